"""Answering a question from the knowledge base, with its sources.

Without an LLM (the default) an answer is *composed*: the best bank item's
reference answer and key points, passages from the user's documents, and
related questions, each marked with where it came from, plus a line saying
no model wrote it. With an LLM configured, the model writes the answer from
the same retrieved passages (see ``llm.py``); the sources shown are the same.

When nothing retrieved is close enough to the question, the coach says so
instead of answering. A short follow-up such as "那LN呢?" is read in the
light of the previous question: the concept it names replaces the one the
previous question named ("BN层为什么要加γ和β?" -> "LN层为什么要加γ和β?").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterator

import numpy as np
import yaml

from .config import RESOURCES
from .limits import check_query
from .retrieve import Hit
from .text import compact, meaningful_length, normalize

RELEVANCE_MIN = 0.30  # best cosine between the query and a hit's question or text


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

    @classmethod
    def from_hit(cls, n: int, hit: Hit) -> "Source":
        return cls(n, hit.kind, hit.source, hit.title, hit.text[:300], hit.item_id, hit.position)

    @property
    def label(self) -> str:
        return f"题库 · {self.item_id}" if self.kind == "bank" else f"{self.source} · {self.title or f'#{self.position}'}"


@dataclass
class ChatAnswer:
    question: str  # as asked
    query: str  # as searched (after reading it in context)
    text: str  # Markdown
    sources: list[Source] = field(default_factory=list)
    grounded: bool = True
    model: str = "offline"


class ChatEngine:
    def __init__(self, kb, llm=None):
        self.kb, self.llm = kb, llm
        self._vectors: dict[str, np.ndarray] = {}  # hit text -> embedding; hits repeat across questions

    def contextualize(self, question: str, previous: str | None) -> str:
        """Rewrite a short follow-up using the previous question (see module docstring)."""
        if not previous or not _looks_like_follow_up(question):
            return question
        glossary = self.kb.bank.glossary
        new = glossary.concepts_in(question)
        old = glossary.concepts_in(previous)
        if new and old:
            return _replace_concept(previous, old[0], _name_as_typed(question, new[0], glossary), glossary)
        return f"{previous} {question}"

    def answer(self, question: str, previous: str | None = None) -> ChatAnswer:
        """The whole answer at once (the CLI and the API); ``stream`` yields it in pieces."""
        *_, last = self.stream(question, previous)
        return last

    def stream(self, question: str, previous: str | None = None) -> Iterator[ChatAnswer]:
        question = check_query(question)
        query = self.contextualize(question, previous)
        hits = [h for h in self.kb.search(query, k=5) if h]
        relevant = self._relevant(query, hits)
        sources = [Source.from_hit(n, h) for n, h in enumerate(relevant, 1)]
        if not relevant:
            yield ChatAnswer(question, query, strings()["not_found"], [], grounded=False)
            return
        if self.llm is None:
            text = compose_offline(relevant, self.kb.bank)
            for end in _pieces(text):
                yield ChatAnswer(question, query, text[:end], sources)
            return
        yield from self._stream_llm(question, query, relevant, sources)

    def _stream_llm(self, question, query, hits, sources) -> Iterator[ChatAnswer]:
        from .llm import grounded_messages

        messages = grounded_messages(query, [f"{h.title}\n{h.text}" for h in hits])
        text = ""
        for piece in self.llm.stream(messages):
            text += piece
            yield ChatAnswer(question, query, text, sources, model=self.llm.id)

    def _relevant(self, query: str, hits: list[Hit]) -> list[Hit]:
        """Hits whose question or text is close enough in meaning to the query."""
        if not hits:
            return []
        q = self.kb.embedder.embed_queries([self.kb.bank.glossary.expand(query)])[0]
        texts = [self.kb.bank.glossary.expand(h.title or h.text[:200]) for h in hits]
        sims = self._embed_cached(texts) @ q
        if max(sims) < RELEVANCE_MIN and not _shares_concept(query, hits[0], self.kb.bank.glossary):
            return []
        return [h for h, s in zip(hits, sims) if s >= RELEVANCE_MIN * 0.8 or h is hits[0]]


    def _embed_cached(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            if len(self._vectors) > 20_000:  # bounded: a long-running server sees many documents
                self._vectors.clear()
            self._vectors.update(zip(missing, self.kb.embedder.embed_queries(missing)))
        return np.stack([self._vectors[t] for t in texts])


def compose_offline(hits: list[Hit], bank) -> str:
    """Markdown built from retrieved hits, every part labelled with its source number."""
    s = strings()
    parts, first = [], hits[0]
    if first.kind == "bank":
        item = bank.items[first.item_id]
        parts.append(f"**{item.question}** [1]\n\n{item.answer.strip()}")
        parts.append(f"**{s['key_points']}**\n" + "\n".join(f"- {kp.point}" for kp in item.key_points))
    else:
        parts.append(f"**{first.title or first.source}** [1]\n\n{first.text.strip()}")
    docs = [(n, h) for n, h in enumerate(hits, 1) if h.kind == "doc" and h is not first][:2]
    if docs:
        parts.append(f"**{s['from_docs']}**\n" + "\n".join(f"> {h.text.strip()[:200]} [{n}]" for n, h in docs))
    related = [(n, h) for n, h in enumerate(hits, 1) if h.kind == "bank" and h is not first][:3]
    if related:
        parts.append(f"**{s['related']}**\n" + "\n".join(f"- {h.title} [{n}]" for n, h in related))
    parts.append(f"_{s['offline_note']}_")
    return "\n\n".join(parts)


def _pieces(text: str, size: int = 60) -> range:
    """End offsets for streaming a composed answer a few characters at a time."""
    return range(min(size, len(text)), len(text) + size, size)


def _looks_like_follow_up(question: str) -> bool:
    q = normalize(question).strip()
    return meaningful_length(q) <= 12 and (q.endswith(("呢", "呢?", "呢？")) or q.startswith(tuple(strings()["follow_up_prefixes"])))


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


def _shares_concept(query: str, hit: Hit, glossary) -> bool:
    wanted = set(glossary.concepts_in(query))
    return bool(wanted & set(glossary.concepts_in(hit.title + " " + hit.text)))
