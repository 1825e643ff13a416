"""Optional LLM backends behind one small interface.

The coach is complete without an LLM. When a user configures an
OpenAI-compatible endpoint (``COACH_LLM_URL``, ``COACH_LLM_MODEL``,
``COACH_LLM_API_KEY``: Ollama, vLLM, DeepSeek, Qwen ...), chat answers are
written by the model from the retrieved passages. Retrieved text is
untrusted: it goes inside a delimited ``<sources>`` block and the system
prompt (``resources/prompts/chat_system.md``) tells the model it is data,
never instructions; the model gets no tools.
"""

from __future__ import annotations

from typing import Callable, Iterator, Protocol

from .config import RESOURCES, Settings
from .errors import CoachError


class ChatModel(Protocol):
    id: str

    def stream(self, messages: list[dict]) -> Iterator[str]: ...


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
    scheme = settings.llm_url.split(":", 1)[0]
    factory = LLMS.get(scheme) or LLMS["http"]
    return factory(settings)


def system_prompt() -> str:
    return (RESOURCES / "prompts" / "chat_system.md").read_text(encoding="utf-8")


def grounded_messages(question: str, passages: list[str], history: list[dict] | None = None) -> list[dict]:
    """Messages with the passages fenced off as data; any '<' in them is escaped so they cannot close the fence."""
    fenced = "\n".join(f'<source id="{n}">\n{p.replace("<", "&lt;")}\n</source>' for n, p in enumerate(passages, 1))
    user = f"<sources>\n{fenced}\n</sources>\n\n问题:{question}"
    return [{"role": "system", "content": system_prompt()}, *(history or [])[-6:], {"role": "user", "content": user}]


@register_llm("http")
@register_llm("https")
def _openai_compatible(settings: Settings) -> ChatModel:
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        raise CoachError("An LLM endpoint is configured but langchain-openai is missing; "
                         "reinstall with the `llm` extra: pip install -e '.[llm]'.") from None
    model = ChatOpenAI(base_url=settings.llm_url, model=settings.llm_model or "default",
                       api_key=settings.llm_api_key or "not-needed", temperature=0.2, timeout=60)

    class OpenAICompatible:
        id = f"openai-compatible:{settings.llm_model}"

        def stream(self, messages: list[dict]) -> Iterator[str]:
            for chunk in model.stream([(m["role"], m["content"]) for m in messages]):
                if chunk.content:
                    yield str(chunk.content)

    return OpenAICompatible()
