"""Engine results as Markdown and JSON for the page and the API (pure functions, no widgets)."""

from __future__ import annotations

import html
import re
import time
from dataclasses import asdict


from ..errors import CoachError
from ..service import Coach
from ..strings import difficulty_name, message_for, t
from .common import bank_question, english, topic_name


def source_label(source) -> str:
    """"题库 · norm-bn-purpose" or the document's file name: the title follows it on the same line."""
    return t("chat.bank_label", item_id=source.item_id) if source.kind == "bank" else source.source



def sources_markdown(sources) -> str:
    """The expandable block under an answer: a line per source with its role, label, relevance and snippet."""
    lines = []
    for s in sources:
        snippet = " ".join(s.snippet.split())[:180]
        lines.append(t("chat.source_line", n=s.n, role=t(f"chat.role_{s.role}"), label=source_label(s),
                       title=" ".join(s.title.split()), relevance=f"{s.relevance:.2f}"))
        lines.append(f"> {snippet}…\n" if snippet else "")
    return "\n".join(lines)



def answer_json(answer) -> dict:
    return {"question": answer.question, "query": answer.query, "grounded": answer.grounded, "model": answer.model,
            "relevance": answer.relevance, "llm_note": answer.llm_note,
            "sources": [asdict(s) | {"label": source_label(s)} for s in answer.sources]}



_CODE = re.compile(r"(```.*?(?:```|$)|`[^`\n]*`)", re.S)



def escape_html(markdown: str) -> str:
    """Markdown with any HTML in it shown as text, not run: '<' and '>' are escaped outside code
    (inside code Markdown already shows them as they are). Answers carry text the coach did not
    write: a model's output, a user's document."""
    parts = _CODE.split(markdown)
    return "".join(part if i % 2 else part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                   for i, part in enumerate(parts))



ASK_LINK = "#coach-ask"  # the page's script asks a related question when a link to this is clicked
_ASK_LINKS = re.compile(r"\[((?:\\.|[^\]\\])*)\]\(" + ASK_LINK + r'(?: "[^"]*")?\)')



def chat_history(messages: list[dict]) -> list[dict]:
    """The conversation as plain user/assistant turns for a model (the sources blocks left out,
    related questions as plain text)."""
    return [{"role": m["role"], "content": _ASK_LINKS.sub(_link_text, m["content"])} for m in messages
            if isinstance(m, dict) and not m.get("metadata") and isinstance(m.get("content"), str)]



def _link_text(link: re.Match) -> str:
    return re.sub(r"\\(.)", r"\1", link.group(1))



def offline_note_shown(messages: list[dict]) -> bool:
    """Has an answer in this conversation already said that no model is configured (in either language)?"""
    from ..chat import strings as chat_strings

    notes = (chat_strings()["offline_note"], t("chat.engine.offline_note", lang="en"))
    return any(isinstance(m, dict) and m.get("role") == "assistant" and any(n in str(m.get("content")) for n in notes)
               for m in messages)



def chat_messages(question: str, answer, final: bool, note: bool = True, english: bool = False,
                  bank: dict | None = None) -> list[dict]:
    """One chat turn as Chatbot messages; the sources become a collapsed block once the answer is complete.

    ``note``: keep the "no model configured" line (the first answer of a conversation has it, the
    others need not repeat it). Related questions ("可能相关") become links that ask them.
    ``english``: for an English reader (an English question, or the English page): a bank item's
    question in English (``bank``: the bank's items), the answer's own headings in English, and one
    line saying that the reference answer is in Chinese."""
    text = escape_html(answer.text)
    if not note:
        text = _without_offline_note(text)
    lead = _lead_item(answer, bank)
    if english:
        text = _in_english(text, lead)
    text = _related_links(text, answer.sources, bank if english else None)
    if english and final and lead is not None:
        text += "\n\n" + t("reference_note", lang="en")
    if answer.query != answer.question:
        text = t("chat.rewritten", query=answer.query) + "\n\n" + text
    turn = [{"role": "user", "content": question}, {"role": "assistant", "content": text}]
    if final and answer.sources:
        turn.append({"role": "assistant", "content": sources_markdown(answer.sources),
                     "metadata": {"title": t("chat.sources_title", n=len(answer.sources)), "status": "done"}})
    return turn



def _lead_item(answer, bank: dict | None):
    """The bank item an answer is about (its first source answers it), or None."""
    first = answer.sources[0] if answer.grounded and answer.sources else None
    if not bank or first is None or first.kind != "bank" or first.role != "answer":
        return None
    return bank.get(first.item_id)



def _in_english(text: str, lead) -> str:
    """An offline answer's own words (``resources/chat.yaml``) in English, and its bank question as
    the bank's English question; the reference answer itself stays as it is (Chinese)."""
    from ..chat import strings as chat_strings

    zh, en = chat_strings(), t("chat.engine", lang="en")
    if lead is not None and lead.question_en:
        heading = escape_html(f"**{lead.question}** [1]")
        if text.startswith(heading):
            text = escape_html(f"**{lead.question_en}** [1]") + text[len(heading):]
    for key in ("not_found", "no_answer", "offline_note"):
        text = text.replace(escape_html(zh[key]), escape_html(en[key]))
    for key in ("key_points", "related", "from_docs", "also_bank"):
        text = text.replace(f"**{zh[key]}**", f"**{en[key]}**")
    text = text.replace(f" · {zh['relevance']} ", f" · {en['relevance']} ")
    prefix, _, suffix = escape_html(zh["from_your_docs"]).partition("{source}")
    en_prefix, _, en_suffix = escape_html(en["from_your_docs"]).partition("{source}")
    return re.sub(re.escape(prefix) + r"(.+?)" + re.escape(suffix), lambda m: en_prefix + m.group(1) + en_suffix, text)



def _without_offline_note(text: str) -> str:
    """``text`` without the offline note, or without the start of it while the answer streams."""
    from ..chat import strings as chat_strings

    marker = f"\n\n_{chat_strings()['offline_note']}_"
    if marker in text:
        return text.replace(marker, "")
    for k in range(len(marker) - 1, 1, -1):
        if text.endswith(marker[:k]):
            return text[:-k]
    return text



def _related_links(text: str, sources, bank: dict | None = None) -> str:
    """"- 题目 · 相关度 0.41 [3]" lines of related sources with the question as a link that asks it
    (``bank``: the bank's items, to show and ask a bank question in English)."""
    related = {s.n: s for s in sources if s.role == "related" and s.title.strip()}
    if not related:
        return text
    tip = t("chat.ask_related").replace('"', "'")

    def link(match: re.Match) -> str:
        source = related.get(int(match.group(2)))
        title = escape_html(" ".join(source.title.split())) if source else ""
        if not title or not match.group(1).startswith(title):
            return match.group(0)
        item = bank.get(source.item_id) if bank and source.kind == "bank" else None
        shown = escape_html(" ".join(item.question_en.split())) if item is not None and item.question_en else title
        label = re.sub(r"([\\\[\]])", r"\\\1", shown)
        return f'- [{label}]({ASK_LINK} "{tip}"){match.group(1)[len(title):]} [{match.group(2)}]'

    return re.sub(r"^- (.+) \[(\d+)\]$", link, text, flags=re.M)



def basis_text(grade) -> str:
    names = "、".join(dict.fromkeys(str(s.get("source")) for s in grade.sources)) or "-"
    if grade.basis == "bank":
        return t("grade.basis_bank", item_id=grade.item_id)
    if grade.basis == "document":
        return t("grade.basis_document", sources=names)
    return t("grade.basis_none")



def point_source(source: str) -> str:
    return t("chat.bank_label", item_id=source.removeprefix("bank:")) if source.startswith("bank:") else source



def graded_question(grade, bank: dict | None = None) -> str:
    """The graded question as the page shows it: a bank item's in the page's language."""
    item = bank.get(grade.item_id) if bank and grade.basis == "bank" and grade.item_id else None
    return bank_question(item) if item is not None else grade.question



def score_markdown(grade, bank: dict | None = None) -> str:
    head = (t("grade.no_score_line", verdict=grade.verdict) if grade.score is None
            else t("grade.score_line", score=f"{grade.score:.1f}", verdict=grade.verdict))
    return head + "\n\n" + t("grade.question_line", question=graded_question(grade, bank), basis=basis_text(grade))



def grade_details_markdown(grade, model_answer: bool = True) -> str:
    """Covered and missed points, misconceptions, feedback and (optionally) the model answer."""
    parts = []
    if grade.covered:
        parts.append(t("grade.covered") + "\n" + "\n".join(
            t("grade.covered_item", point=p.point, evidence=p.evidence or "") for p in grade.covered))
    if grade.missing:
        parts.append(t("grade.missing") + "\n" + "\n".join(
            t("grade.missing_item", point=p.point, source=point_source(p.source)) for p in grade.missing))
    if grade.misconceptions:
        parts.append(t("grade.misconceptions") + "\n" + "\n".join(
            t("grade.misconception_item", sentence=m.sentence, correction=m.correction) for m in grade.misconceptions))
    if grade.feedback:
        parts.append(t("grade.feedback") + "\n" + "\n".join(f"- {line}" for line in grade.feedback))
    if getattr(grade, "llm_feedback", ""):
        parts.append(t("grade.llm_feedback") + "\n\n" + escape_html(grade.llm_feedback))
    if getattr(grade, "second_opinion", None):
        parts.append(t("grade.second_opinion", score=f"{grade.second_opinion['score']:.1f}",
                       reason=escape_html(grade.second_opinion["reason"])))
    if getattr(grade, "llm_note", ""):
        parts.append(f"_{grade.llm_note}_")
    if model_answer and grade.model_answer:
        parts.append(t("grade.model_answer") + "\n\n" + grade.model_answer.strip())
        if english() and grade.basis == "bank":  # the English page: the bank's answers are Chinese
            parts.append(t("reference_note"))
    return "\n\n".join(parts)



def highlighted_answer(answer: str, grade) -> list[tuple[str, str | None]]:
    """The answer cut into (text, label) pieces: covered evidence and misconception sentences marked.

    >>> from types import SimpleNamespace as N
    >>> g = N(covered=[N(evidence="BN做标准化。")], misconceptions=[])
    >>> highlighted_answer("BN做标准化。其他。", g)
    [('BN做标准化。', '命中要点'), ('其他。', None)]
    """
    marks = [(m.sentence, t("grade.misconception_label")) for m in grade.misconceptions]
    marks += [(p.evidence, t("grade.covered_label")) for p in grade.covered if p.evidence]
    spans: list[tuple[int, int, str]] = []
    for sentence, label in marks:
        start = answer.find(sentence)
        if start >= 0 and not any(a < start + len(sentence) and start < b for a, b, _ in spans):
            spans.append((start, start + len(sentence), label))
    pieces, at = [], 0
    for start, end, label in sorted(spans):
        if start > at:
            pieces.append((answer[at:start], None))
        pieces.append((answer[start:end], label))
        at = end
    if at < len(answer):
        pieces.append((answer[at:], None))
    return pieces



def question_json(question, topic_name: str = "") -> dict | None:
    if question is None:
        return None
    return {"seq": question.seq, "kind": question.kind, "item_id": question.item_id, "text": question.text,
            "topic": question.topic, "topic_name": topic_name or question.topic, "difficulty": question.difficulty,
            "time_limit": question.time_limit, "asked_at": question.asked_at.isoformat()}



def turn_json(result) -> dict:
    return {"score": result.score, "verdict": result.grade.verdict, "elapsed": round(result.elapsed, 1),
            "timed_out": result.timed_out, "follow_up": result.follow_up, "finished": result.finished,
            "grade": result.grade.to_json()}



def interview_config(topics, difficulty, questions, time_limit, review_only: bool = False):
    """An ``InterviewConfig`` from form or API values (the engine checks them)."""
    from ..interview import ADAPTIVE, InterviewConfig

    from ..limits import check_ids

    level = difficulty if isinstance(difficulty, int) else str(difficulty or ADAPTIVE).strip()[:20]
    if isinstance(level, str) and level.isdigit():
        level = int(level)
    return InterviewConfig(tuple(check_ids(topics)), level, 5 if questions in (None, "") else questions,
                           None if time_limit in (None, "", 0, "0") else time_limit, bool(review_only))



def report_markdown(report) -> str:
    """Per-file results of an upload; file names are the user's text, so they are escaped."""
    name = html.escape
    lines = [t("kb.added", name=name(n), chunks=c) for n, c in report.added.items()]
    lines = [t("kb.replaced", name=name(n)) if n in report.replaced else line
             for n, line in zip(report.added, lines)]
    lines += [t("kb.unchanged", name=name(n)) for n in report.unchanged]
    lines += [t("kb.failed", name=name(n), message=name(_without_name(message_for(CoachError(m)), n)))
              for n, m in report.errors.items()]
    return "\n\n".join(lines)



def asked_text(coach: Coach, question) -> str:
    """An interview question as the page shows it: a bank item's in the page's language
    (follow-ups and questions from the user's documents as they are)."""
    item = None if question.is_follow_up or not question.item_id else coach.kb.bank.items.get(question.item_id)
    return bank_question(item) if item is not None else question.text



def question_markdown(coach: Coach, question, view: dict) -> str:
    topic = topic_name(coach, question.topic)
    if question.is_follow_up:
        return t("interview.follow_up_header", topic=topic, question=question.text)
    return t("interview.question_header", n=view["main"], total=view["total"], topic=topic,
             difficulty=difficulty_name(question.difficulty), question=asked_text(coach, question))



def countdown_markdown(view: dict, now: float | None = None) -> str:
    deadline = view.get("deadline")
    if not deadline:
        return t("interview.countdown_off")
    left = int(deadline - (now or time.time()) + 0.999)
    if left <= 0:
        return t("interview.countdown_over")
    return t("interview.countdown", mm=f"{left // 60:02d}", ss=f"{left % 60:02d}")



def turn_markdown(result, coach: Coach | None = None) -> str:
    grade = result.grade
    head = (t("grade.no_score_line", verdict=grade.verdict) if grade.score is None
            else t("grade.score_line", score=f"{grade.score:.1f}", verdict=grade.verdict))
    note = "\n\n" + t("interview.countdown_over") if result.timed_out else ""
    text = asked_text(coach, result.question) if coach is not None else result.question.text
    asked = t("interview.last_grade", question=" ".join(text.split()))
    return f"{asked}\n\n{head}{note}\n\n{grade_details_markdown(grade)}"



def local_time(moment) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")

def _without_name(message: str, name: str) -> str:
    """"empty.md 是空文件…" under the heading "empty.md" reads as "是空文件…": the name is said once."""
    return message[len(name):].lstrip(" :：") if message.startswith(name) else message
