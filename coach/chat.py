"""Answering a question from the knowledge base, with its sources.

An answer is about the question asked, or there is none. The knowledge base
returns bank items and chunks of the user's documents as two lists, each hit
with a calibrated ``relevance`` (see ``relevance.py``); a hit at or above
``relevance.ANSWER`` *answers* the question. The best answering hit leads,
whichever list it comes from, so a user's notes lead when the bank has no
answer; a document that also answers is shown and cited beside a bank answer.
When nothing answers, the coach says so and lists the nearest passages as
"可能相关", never as the answer.

Without an LLM (the default) an answer is *composed* from the hits, every
part marked with its source number. With an LLM configured, the model writes
the answer from the same hits (see ``llm.py``); the sources are the same.

A short follow-up such as "那LN呢?" is read in the light of the previous
question: the concept it names replaces the one the previous question named
("BN层为什么要加γ和β?" -> "LN层为什么要加γ和β?"), and the comparison of the two
("LN和BN有什么区别") is looked up too. A hit that does not name the new
concept in its question can never answer such a follow-up, so the previous
concept's answer is never returned for the new one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Iterator

import yaml

from .config import RESOURCES
from .limits import check_query
from .relevance import named_terms as _named_terms
from .retrieve import Hit, Lookup
from .text import compact, meaningful_length, normalize

MAX_PREVIOUS = 500  # characters of the previous question kept for reading a follow-up


@lru_cache(maxsize=1)
def strings() -> dict:
    return yaml.safe_load((RESOURCES / "chat.yaml").read_text(encoding="utf-8"))


@dataclass
class Source:
    n: int
    kind: str  # "bank" or "doc"
    source: str
    title: str
    snippet: str
    item_id: str | None = None
    position: int = 0
    relevance: float = 0.0
    role: str = "answer"  # "answer": it answers the question; "related": 可能相关 only

    @classmethod
    def from_hit(cls, n: int, hit: Hit, role: str) -> "Source":
        return cls(n, hit.kind, hit.source, hit.title, hit.text[:300], hit.item_id, hit.position, hit.relevance, role)

    @property
    def label(self) -> str:
        return f"题库 · {self.item_id}" if self.kind == "bank" else f"{self.source} · {self.title or f'#{self.position}'}"


@dataclass
class ChatAnswer:
    question: str  # as asked
    query: str  # as searched (after reading it in context)
    text: str  # Markdown
    sources: list[Source] = field(default_factory=list)
    grounded: bool = True  # False when nothing in the knowledge base answers the question
    model: str = "offline"
    relevance: float = 0.0  # of the leading source; 0 when the coach abstained
    llm_note: str = ""  # why the configured model's answer is not shown, or what was removed from it


@dataclass(frozen=True)
class FollowUp:
    """How a question was read in context: what to search, and the subject it switched to."""

    query: str
    subject: str | None = None  # "§layer-norm" for a glossary concept, else the name as typed ("lion")
    alternatives: tuple[str, ...] = ()  # other readings, looked up as well ("LN和BN有什么区别", "LN")


class ChatEngine:
    def __init__(self, kb, llm=None, unsourced: bool | None = None):
        self.kb, self.llm = kb, llm
        # with a model: may it answer from its own knowledge when nothing in the knowledge base does?
        self.unsourced = kb.settings.llm_unsourced if unsourced is None else unsourced

    def read_follow_up(self, question: str, previous: str | None) -> FollowUp:
        """Read a short follow-up in the light of the previous question.

        "那LN呢?" after "BN层为什么要加γ和β?" switches the subject: it is searched as
        "LN层为什么要加γ和β?", as "LN和BN有什么区别" and as "LN". "为什么?" or "具体公式是什么"
        has no subject of its own, so it is searched together with the previous question.
        A question with a subject of its own is searched as it is.
        """
        previous = (previous or "")[:MAX_PREVIOUS]
        if not previous or meaningful_length(question) > 16:
            return FollowUp(question)
        glossary = self.kb.bank.glossary
        subject = _switched_subject(question)
        if subject:
            concepts = glossary.concepts_in(subject)
            old = [c for c in glossary.concepts_in(previous) if c not in concepts]
            names = [n for n in _named_terms(subject) if glossary.concept_of(n) is None]
            key = names[0] if names else f"§{concepts[0]}" if concepts else compact(subject)
            readings = []
            if old:
                old_name = _name_as_typed(previous, old[0], glossary)
                if concepts:
                    readings.append(_replace_concept(previous, old[0], subject, glossary))
                readings.append(f"{subject}和{old_name}有什么区别")
            readings.append(subject)
            return FollowUp(readings[0], key, tuple(readings[1:]))
        if glossary.concepts_in(question) or _named(question) or self._off_topic_words(question):
            return FollowUp(question)
        return FollowUp(f"{previous} {question}", None, (previous,))

    def _off_topic_words(self, question: str) -> bool:
        """Is the question mostly words no question in the knowledge base ever uses ("红烧肉", "好吃")?
        Then it is a new question, not a continuation of the previous one: "为什么?" or "具体公式是什么"
        use the words interview questions use, "红烧肉怎么做才好吃" does not. One odd word ("不加会怎样",
        "any downsides?") is not enough: tokenisation and synonyms make those."""
        from .relevance import query_terms

        retriever = self.kb.retriever
        terms = query_terms(question, self.kb.bank.glossary, retriever.terms)
        unseen = [t for t in terms.weights if t not in retriever.terms.df]
        return len(unseen) >= 2 and terms.unseen >= 0.5

    def contextualize(self, question: str, previous: str | None) -> str:
        return self.read_follow_up(question, previous).query

    def find(self, question: str, previous: str | None = None) -> Lookup:
        """The knowledge base's hits for ``question`` read in context (what chat and grading share)."""
        reading = self.read_follow_up(question, previous)
        spell = self.kb.retriever.read  # typos read as the terms they stand for (过你和 -> 过拟合)
        merged, first = None, spell(reading.query)
        for query in (first, *map(spell, reading.alternatives)):  # the first reading that finds an answer wins
            found = self.kb.lookup(query)
            if reading.subject:
                found = found.without(self._not_naming(found, reading.subject))
            if found.answer is not None:
                return replace(found, query=first)
            merged = found if merged is None else merged.merged(found)
        return merged

    def answer(self, question: str, previous: str | None = None, history: list[dict] | None = None) -> ChatAnswer:
        """The whole answer at once (the CLI and the API); ``stream`` yields it in pieces."""
        *_, last = self.stream(question, previous, history)
        return last

    def stream(self, question: str, previous: str | None = None,
               history: list[dict] | None = None) -> Iterator[ChatAnswer]:
        """The answer in growing pieces. ``history``: the conversation so far (user/assistant
        messages), passed on to a configured model; the offline answer does not need it."""
        question = check_query(question)
        found = self.find(question, previous)
        lead = found.answer
        parts = self.kb.parts(found.query) if lead is None else []
        if parts:  # "SPP,YOLO了解吗?": nothing answers the whole, something answers each part
            sources = [Source.from_hit(n, h, "answer") for n, h in enumerate(parts, 1)]
            text = compose_parts(parts, self.kb, note=self.llm is None)
            offline = ChatAnswer(question, found.query, text, sources, relevance=min(h.relevance for h in parts))
            if self.llm is None:
                for end in _pieces(text):
                    yield replace(offline, text=text[:end])
                return
            from .llm import grounded_messages

            messages = grounded_messages(found.query, [f"{h.title}\n{h.text}" for h in parts], history)
            yield from self._stream_llm(messages, len(parts), offline)
            return
        if lead is None:
            related = found.related()
            sources = [Source.from_hit(n, h, "related") for n, h in enumerate(related, 1)]
            offline = ChatAnswer(question, found.query, compose_abstention(related), sources, grounded=False)
            if self.llm is None:
                yield offline
                return
            from .llm import no_source_messages

            yield from self._stream_llm(no_source_messages(question, history, self.unsourced), 0, offline)
            return
        shown = _shown(found, lead)
        sources = [Source.from_hit(n, h, "answer" if h.answers else "related") for n, h in enumerate(shown, 1)]
        text = compose_offline(shown, self.kb, note=self.llm is None)
        if self.llm is None:
            for end in _pieces(text):
                yield ChatAnswer(question, found.query, text[:end], sources, relevance=lead.relevance)
            return
        from .llm import grounded_messages

        messages = grounded_messages(found.query, [f"{h.title}\n{h.text}" for h in shown], history)
        offline = ChatAnswer(question, found.query, text, sources, relevance=lead.relevance)
        yield from self._stream_llm(messages, len(shown), offline)

    def _stream_llm(self, messages: list[dict], n_sources: int, offline: ChatAnswer) -> Iterator[ChatAnswer]:
        """The model's answer as it streams, its citations checked against the ``n_sources`` given;
        if the endpoint fails at any point, the offline answer with one line saying why."""
        from .llm import LLMUnavailable, check_citations

        s = strings()
        text = ""
        try:
            for piece in self.llm.stream(messages):
                text += piece
                shown = check_citations(_complete_markers(text), n_sources).text
                yield replace(offline, text=shown, model=self.llm.id)
        except LLMUnavailable as exc:
            note = s["llm_failed"].format(reason=exc)
            yield replace(offline, text=f"_{note}_\n\n{offline.text}", llm_note=note)
            return
        checked = check_citations(text, n_sources)
        note = s["citations_removed"].format(numbers=", ".join(f"[{n}]" for n in checked.removed)) if checked.removed else ""
        final = checked.text.strip() + (f"\n\n_{note}_" if note else "")
        yield replace(offline, text=final, model=self.llm.id, llm_note=note)

    def _not_naming(self, found: Lookup, subject: str) -> set[str]:
        """Groups whose question does not name ``subject``: they cannot answer a follow-up about it."""
        glossary, out = self.kb.bank.glossary, set()
        for hit in found.bank + found.docs:
            questions = self.kb.bank.items[hit.item_id].all_questions if hit.kind == "bank" else [hit.title]
            if subject.startswith("§"):
                named = any(subject[1:] in glossary.concepts_in(q) for q in questions)
            else:
                named = any(subject in compact(q) for q in questions)
            if not named:
                out.add(hit.group)
        return out


def _shown(found: Lookup, lead: Hit) -> list[Hit]:
    """The lead, up to two other answering hits (documents first), then up to three related ones."""
    others = [h for h in found.answers if h is not lead]
    others.sort(key=lambda h: h.kind != "doc")
    return [lead, *others[:2], *found.related(3)]


def compose_offline(hits: list[Hit], kb, note: bool = True) -> str:
    """Markdown built from the shown hits, every part labelled with its source number.

    A bank answer's key points are listed under "要点" only when the answer does not
    already make them (see :func:`_made_in`): a list repeating the answer adds nothing.
    """
    s = strings()
    lead, parts = hits[0], []
    if lead.kind == "bank":
        item = kb.bank.items[lead.item_id]
        parts.append(f"**{item.question}** [1]\n\n{item.answer.strip()}")
        concepts = set(kb.bank.glossary.concepts_in(item.answer))  # once per answer, not once per point
        extra = [kp.point for kp in item.key_points if not _made_in(kp, item.answer, kb.bank.glossary, concepts)]
        if extra:
            parts.append(f"**{s['key_points']}**\n" + "\n".join(f"- {point}" for point in extra))
    else:
        parts.append(f"**{lead.title or lead.source}** [1]\n\n{lead.text.strip()}\n\n"
                     + s["from_your_docs"].format(source=lead.source))
    support = [(n, h) for n, h in enumerate(hits, 1) if h.answers and h is not lead]
    docs = [(n, h) for n, h in support if h.kind == "doc"]
    if docs:
        parts.append(f"**{s['from_docs']}**\n" + "\n".join(f"> {h.text.strip()[:240]} [{n}]" for n, h in docs))
    banks = [(n, h) for n, h in support if h.kind == "bank"]
    if banks:
        parts.append(f"**{s['also_bank']}**\n" + "\n".join(f"- {h.title} [{n}]" for n, h in banks))
    related = [(n, h) for n, h in enumerate(hits, 1) if not h.answers]
    if related:
        parts.append(f"**{s['related']}**\n" + "\n".join(f"- {_related_label(h)} [{n}]" for n, h in related))
    if note:
        parts.append(f"_{s['offline_note']}_")
    return "\n\n".join(parts)


def compose_parts(parts: list[Hit], kb, note: bool = True) -> str:
    """A question that asks several things: each part's answer under its own question."""
    s = strings()
    out = [s["parts"]]
    for n, hit in enumerate(parts, 1):
        if hit.kind == "bank":
            item = kb.bank.items[hit.item_id]
            out.append(f"**{item.question}** [{n}]\n\n{item.answer.strip()}")
        else:
            out.append(f"**{hit.title or hit.source}** [{n}]\n\n{hit.text.strip()}\n\n"
                       + s["from_your_docs"].format(source=hit.source))
    if note:
        out.append(f"_{s['offline_note']}_")
    return "\n\n".join(out)


def compose_abstention(related: list[Hit]) -> str:
    s = strings()
    if not related:
        return s["not_found"]
    lines = "\n".join(f"- {_related_label(h)} [{n}]" for n, h in enumerate(related, 1))
    return f"{s['no_answer']}\n\n**{s['related']}**\n{lines}"


def _made_in(key_point, answer: str, glossary, concepts: set[str]) -> bool:
    """Does ``answer`` already make ``key_point``? Yes when it mentions every one of the point's
    term groups (the grader's own test of a point), or when at least half of the point's
    character pairs occur in it (the same point in other words than the terms list). ``concepts``:
    the glossary concepts ``answer`` names."""
    if key_point.terms and all(any(glossary.mentions(t, answer, concepts) for t in group)
                               for group in key_point.terms):
        return True
    point, said = compact(key_point.point), compact(answer)
    pairs = {point[i:i + 2] for i in range(len(point) - 1)}
    return bool(pairs) and sum(p in said for p in pairs) >= len(pairs) / 2


def _related_label(hit: Hit) -> str:
    title = hit.title or hit.text[:60].replace("\n", " ")
    where = "" if hit.kind == "bank" else f"（{hit.source}）"
    return f"{title}{where} · {strings()['relevance']} {hit.relevance:.2f}"


def _complete_markers(text: str) -> str:
    """``text`` without a trailing, unfinished citation ("… [1" while streaming)."""
    return re.sub(r"\[\d{0,3}$", "", text)


def _pieces(text: str, size: int = 60) -> range:
    """End offsets for streaming a composed answer a few characters at a time."""
    return range(min(size, len(text)), len(text) + size, size)


_SWITCH = re.compile(r"^(?:那么|那|还有|另外|如果是|换成|and|what about|how about)?\s*(.{1,24}?)\s*(?:呢|的呢|又如何|怎么样|怎样)?\s*[?？。.!！]*$",
                     re.IGNORECASE)


def _switched_subject(question: str) -> str | None:
    """The new subject of a "那X呢?" / "X呢" / "what about X?" follow-up, as typed, else None.

    >>> _switched_subject("那LN呢?"), _switched_subject("what about Adam?"), _switched_subject("为什么?")
    ('LN', 'Adam', None)
    """
    text = question.strip()
    lowered = normalize(text)
    marked = lowered.rstrip("?？。.!！ ").endswith(("呢", "又如何")) or lowered.startswith(
        tuple(strings()["follow_up_prefixes"]))
    match = _SWITCH.match(text)
    if not marked or not match:
        return None
    subject = re.sub(r"^(?:the|a|an)\s+", "", match.group(1).strip(), flags=re.IGNORECASE)
    if not subject or _QUESTION_WORDS.search(subject):
        return None
    # a thing has a name: Latin script, a glossary term, or a short noun ("互信息"), not "推理的时候"
    if _LATIN_NAME.search(subject) or (len(subject) <= 6 and "的" not in subject):
        return subject
    return None


_QUESTION_WORDS = re.compile(r"为什么|为啥|怎么|如何|什么|啥|哪|吗|是否|还是|\bwhy\b|\bhow\b|\bwhat\b|\bwhich\b")
_LATIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9\-+]+")


def _named(question: str) -> bool:
    """Does the question name something in Latin script (LoRA, ZeRO)? Then it has a subject."""
    return bool(_named_terms(question))


def _replace_concept(previous: str, concept_id: str, new_name: str, glossary) -> str:
    for name in sorted(glossary.concepts[concept_id].names, key=len, reverse=True):
        if name and name.lower() in previous.lower():
            start = previous.lower().index(name.lower())
            return previous[:start] + new_name + previous[start + len(name):]
    return f"{previous} {new_name}"


def _name_as_typed(question: str, concept_id: str, glossary) -> str:
    """The concept's name as it appears in the question ("LN"), else its canonical name."""
    names = sorted(glossary.concepts[concept_id].names, key=len, reverse=True)
    return next((n for n in names if n and n.lower() in question.lower()), names[-1])
