"""Optional LLM mode: an OpenAI-compatible endpoint, and what the coach asks of it.

The coach is complete without an LLM. When a user configures an
OpenAI-compatible endpoint (``COACH_LLM_URL``, ``COACH_LLM_MODEL``,
``COACH_LLM_API_KEY``: Ollama, vLLM, llama.cpp, DeepSeek, Qwen ...), the model
writes chat answers from the retrieved passages, words interview follow-ups
from the candidate's answer and the missed point, rewrites grading feedback
(the score stays the offline one), can give a second-opinion score
(``COACH_LLM_JUDGE=1``), and can draft questions from notes that have none.

Everything the model is given besides the fixed prompts in
``resources/prompts/`` is data: retrieved passages, answers, documents and
grades go inside tagged blocks with ``<`` escaped, so they cannot close the
block, and the prompts say that nothing inside is an instruction. The model
gets no tools. What it returns is checked before use: citations against the
sources given, JSON against its schema. Any failure (refused connection,
timeout, HTTP error, malformed or dropped stream) raises ``LLMUnavailable``
with a short reason that never contains the API key; every caller then falls
back to the offline result and says why in one line. See docs/llm.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

from .config import RESOURCES, Settings
from .errors import CoachError

HISTORY_TURNS = 6  # messages of the conversation passed on with a chat question
MAX_TAGGED = 6000  # characters of one tagged block (an answer, a document, a grade)


class LLMUnavailable(Exception):
    """The endpoint failed; ``str()`` is a short reason safe to show (no key, no URL credentials)."""


class ChatModel(Protocol):
    id: str

    def stream(self, messages: list[dict]) -> Iterator[str]: ...

    def complete(self, messages: list[dict]) -> str: ...


LLMS: dict[str, Callable[[Settings], ChatModel]] = {}


def register_llm(scheme: str):
    def wrap(factory):
        LLMS[scheme] = factory
        return factory
    return wrap


def make_llm(settings: Settings) -> ChatModel | None:
    """The configured chat model, or None when no endpoint is set."""
    if not settings.llm_url:
        return None
    scheme = settings.llm_url.split(":", 1)[0].lower()
    factory = LLMS.get(scheme)
    if factory is None:
        raise CoachError("COACH_LLM_URL must be an http:// or https:// address of an OpenAI-compatible API "
                         "(e.g. http://127.0.0.1:11434/v1 for Ollama).")
    return factory(settings)


def prompt(name: str) -> str:
    return (RESOURCES / "prompts" / f"{name}.md").read_text(encoding="utf-8")


def system_prompt() -> str:
    return prompt("chat_system")


def tagged(tag: str, text: str, limit: int = MAX_TAGGED) -> str:
    """``text`` inside ``<tag>…</tag>`` with every '<' escaped, so it cannot close the block."""
    return f"<{tag}>\n{str(text)[:limit].replace('<', '&lt;')}\n</{tag}>"


def grounded_messages(question: str, passages: list[str], history: list[dict] | None = None) -> list[dict]:
    """Messages with the passages fenced off as data; any '<' in them is escaped so they cannot close the fence.

    ``history``: the conversation so far as {"role": "user"|"assistant", "content"} messages; the
    last ``HISTORY_TURNS`` are passed on, so "那LN呢?" is read in context by the model too.
    """
    fenced = "\n".join(f'<source id="{n}">\n{p.replace("<", "&lt;")}\n</source>' for n, p in enumerate(passages, 1))
    user = f"<sources>\n{fenced}\n</sources>\n\n问题:{question}"
    return [{"role": "system", "content": system_prompt()}, *clean_history(history), {"role": "user", "content": user}]


def clean_history(history: list[dict] | None) -> list[dict]:
    """The last turns of a conversation, as plain user/assistant messages (never a system message)."""
    out = []
    for message in (history or [])[-HISTORY_TURNS:]:
        role = message.get("role") if isinstance(message, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if role in ("user", "assistant") and isinstance(content, str) and content.strip():
            out.append({"role": role, "content": content[:2000]})
    return out


def no_source_messages(question: str, history: list[dict] | None = None, unsourced: bool = False) -> list[dict]:
    """Nothing in the knowledge base answers: the model must say so (or, if the user allowed it, answer
    from its own knowledge with a warning first)."""
    system = prompt("chat_unsourced" if unsourced else "chat_no_source")
    user = f"<sources>\n</sources>\n\n问题:{question}"
    return [{"role": "system", "content": system}, *clean_history(history), {"role": "user", "content": user}]


# ---- checking what comes back -----------------------------------------------------------------
_CITATION = re.compile(r"\[(\d{1,3})\]")


@dataclass
class Checked:
    text: str
    removed: list[int]  # citation numbers that pointed at no source


def check_citations(text: str, n_sources: int) -> Checked:
    """Drop every [n] that names no source (``1..n_sources``); the caller notes which were dropped."""
    removed: list[int] = []

    def keep(match: re.Match) -> str:
        n = int(match.group(1))
        if 1 <= n <= n_sources:
            return match.group(0)
        removed.append(n)
        return ""

    return Checked(_CITATION.sub(keep, text), sorted(set(removed)))


def parse_json(text: str) -> dict:
    """The one JSON object in a model's reply (a ```json fence around it is allowed)."""
    body = text.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", body, flags=re.S)
    if fenced:
        body = fenced.group(1)
    try:
        value = json.loads(body)
    except ValueError:
        raise LLMUnavailable("模型的回复不是合法的 JSON") from None
    if not isinstance(value, dict):
        raise LLMUnavailable("模型的回复不是 JSON 对象")
    return value


# ---- what the coach asks of the model ------------------------------------------------------------
def write_follow_up(llm: ChatModel, question: str, answer: str, missed_point: str) -> str:
    """One follow-up question about ``missed_point``, worded from the candidate's own answer."""
    user = "\n".join([tagged("question", question, 600), tagged("answer", answer or "（未作答）", 2000),
                      tagged("missed_point", missed_point, 600)])
    text = llm.complete([{"role": "system", "content": prompt("follow_up")}, {"role": "user", "content": user}])
    text = " ".join(text.strip().strip('"“”').split())
    if not text or len(text) > 200:
        raise LLMUnavailable("模型写的追问为空或太长")
    return text


def rewrite_feedback(llm: ChatModel, grade: dict, answer: str) -> str:
    """A short, kind, specific paragraph from the deterministic grade (its score is not shown or changed)."""
    facts = {"question": grade.get("question", ""),
             "covered": [p.get("point") for p in grade.get("covered", [])],
             "missed": [p.get("point") for p in grade.get("missing", [])],
             "misconceptions": [m.get("correction") for m in grade.get("misconceptions", [])]}
    user = tagged("grade", json.dumps(facts, ensure_ascii=False)) + "\n" + tagged("answer", answer, 2000)
    text = llm.complete([{"role": "system", "content": prompt("feedback")}, {"role": "user", "content": user}]).strip()
    if not text:
        raise LLMUnavailable("模型没有给出反馈")
    return text[:800]


def judge(llm: ChatModel, question: str, answer: str, key_points: list[str], reference: str) -> dict:
    """A second-opinion rubric score: {"score": 0-10, "reason": str}, validated."""
    user = "\n".join([tagged("question", question, 600), tagged("key_points", "\n".join(f"- {p}" for p in key_points)),
                      tagged("reference", reference, 2000), tagged("answer", answer, 3000)])
    value = parse_json(llm.complete([{"role": "system", "content": prompt("judge")}, {"role": "user", "content": user}]))
    score = value.get("score")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= float(score) <= 10:
        raise LLMUnavailable("模型给的分数不是 0-10 之间的数")
    reason = value.get("reason", "")
    return {"score": round(float(score), 1), "reason": str(reason)[:200] if isinstance(reason, str) else ""}


def draft_items(llm: ChatModel, text: str, limit: int = 5) -> list[dict]:
    """Bank-style items (question, key_points, answer) drafted from notes without Q&A structure, validated."""
    value = parse_json(llm.complete([{"role": "system", "content": prompt("draft")},
                                     {"role": "user", "content": tagged("document", text, 8000)}]))
    items = value.get("items")
    if not isinstance(items, list):
        raise LLMUnavailable("模型的回复里没有题目列表")
    out = []
    for item in items[:limit]:
        if not isinstance(item, dict):
            continue
        question, answer, points = item.get("question"), item.get("answer"), item.get("key_points")
        if not (isinstance(question, str) and question.strip() and isinstance(answer, str) and answer.strip()
                and isinstance(points, list) and points and all(isinstance(p, str) and p.strip() for p in points)):
            continue
        out.append({"question": " ".join(question.split())[:300], "answer": answer.strip()[:2000],
                    "key_points": [" ".join(p.split())[:300] for p in points[:6]]})
    if not out:
        raise LLMUnavailable("模型没有写出可用的题目")
    return out


# ---- the OpenAI-compatible backend ---------------------------------------------------------------
def _reason(exc: Exception, secret: str) -> str:
    """A short, safe reason for a failed request: the kind of failure, never the key."""
    name = type(exc).__name__
    if "Timeout" in name:
        reason = "请求超时"
    elif "Connection" in name:
        reason = "无法连接到大模型接口"
    elif "Authentication" in name or "PermissionDenied" in name:
        reason = "接口拒绝了 API key"
    elif "NotFound" in name:
        reason = "接口地址或模型名不存在"
    elif "RateLimit" in name:
        reason = "接口限流"
    elif isinstance(getattr(exc, "status_code", None), int):
        reason = f"接口返回 HTTP {exc.status_code}"
    elif isinstance(exc, (ValueError, KeyError, TypeError)) or "Decode" in name or "JSON" in name:
        reason = "接口返回的数据格式不对"
    else:
        reason = f"请求失败（{name}）"
    return reason.replace(secret, "***") if secret else reason


@register_llm("http")
@register_llm("https")
def _openai_compatible(settings: Settings) -> ChatModel:
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        raise CoachError("An LLM endpoint is configured but langchain-openai is missing; "
                         "reinstall with the `llm` extra: pip install -e '.[llm]'.") from None
    secret = settings.llm_api_key
    model = ChatOpenAI(base_url=settings.llm_url, model=settings.llm_model or "default",
                       api_key=secret or "not-needed", temperature=0.2, timeout=settings.llm_timeout,
                       max_retries=0)

    class OpenAICompatible:
        id = f"openai-compatible:{settings.llm_model or 'default'}"

        def stream(self, messages: list[dict]) -> Iterator[str]:
            finished = False
            try:
                for chunk in model.stream([(m["role"], m["content"]) for m in messages]):
                    finished = finished or bool((chunk.response_metadata or {}).get("finish_reason"))
                    if chunk.content:
                        yield str(chunk.content)
            except Exception as exc:  # every transport or protocol failure is the same fallback
                raise LLMUnavailable(_reason(exc, secret)) from None
            if not finished:  # the connection closed before the model said it was done
                raise LLMUnavailable("回答流在完成前中断")

        def complete(self, messages: list[dict]) -> str:
            try:
                reply = model.invoke([(m["role"], m["content"]) for m in messages])
            except Exception as exc:
                raise LLMUnavailable(_reason(exc, secret)) from None
            return str(reply.content or "")

        def __repr__(self) -> str:  # never the key
            return f"<{self.id}>"

    return OpenAICompatible()
