"""Questions from the user's documents: every Q&A pair found at ingestion becomes an item.

A pasted interview page ("● BN层的作用...\\n参考回答:...") is a small question
bank of the user's own. Each Q&A pair (all chunks that share a question
title) becomes a ``BankItem`` the interview can ask and the grader can use as
the reference, so the same engine serves both:

- id: ``doc-`` and a hash of the file and the question (stable across re-indexing);
- topic: ``doc:<file name>``; the topic ``docs`` stands for all documents;
- key points: the answer's list items, or else its sentences, at most six,
  each shown as coming from the document; no misconceptions (a document
  states none).

Compromise: a page's answer is what its author wrote, sometimes thin or
chatty ("讲了我用过的..."); key points taken from it are only as good as it is,
which the grade says ("basis": "document").
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

from .bank import Bank, BankItem, KeyPoint, Topic
from .index import IndexData, Unit
from .text import meaningful_length, split_sentences, tokenize

ALL_DOCS = "docs"  # the topic that means "every document"
TOPIC_PREFIX = "doc:"
MAX_POINTS = 6
_LIST_ITEM = re.compile(r"^\s*(?:[-*+●•·▪]|\d{1,2}\s*[.、)）]|[（(]\d{1,2}[)）]|[一二三四五六七八九十][、.])\s*(\S.*)$")


def doc_item_id(source: str, question: str) -> str:
    return "doc-" + hashlib.sha256(f"{source}\n{question}".encode()).hexdigest()[:12]


def doc_topic(source: str) -> str:
    return TOPIC_PREFIX + source


def doc_items(data: IndexData, glossary) -> dict[str, BankItem]:
    """One item per Q&A pair in the indexed documents, in document order."""
    groups: dict[tuple[str, str], list[Unit]] = {}
    for unit in data.units:
        if unit.kind == "doc" and unit.chunk_kind == "qa" and unit.title:
            groups.setdefault((unit.source, unit.title), []).append(unit)
    items = {}
    for (source, question), units in groups.items():
        answer = "\n".join(u.text for u in sorted(units, key=lambda u: u.position)).strip()
        points = key_points_from(answer, glossary)
        if not points:
            continue  # a question with no answer under it cannot be graded
        item_id = doc_item_id(source, question)
        items[item_id] = BankItem(id=item_id, topic=doc_topic(source), difficulty=2, question=question,
                                  question_en="", asks=(), key_points=points, answer=answer, misconceptions=(),
                                  follow_ups=(), tags=(), file=source)
    return items


def key_points_from(answer: str, glossary) -> tuple[KeyPoint, ...]:
    """The answer's list items, else its sentences: the most contentful six, in their order.

    >>> [kp.point for kp in key_points_from("两个作用:\\n1. 加速收敛\\n2. 有正则效果", glossary)]  # doctest: +SKIP
    ['加速收敛', '有正则效果']
    """
    lines = answer.splitlines()
    listed = [m.group(1).strip() for m in map(_LIST_ITEM.match, lines) if m]
    parts = listed if len(listed) >= 2 else split_sentences(answer)
    parts = [p.strip() for p in parts if meaningful_length(p) >= 6][:40]
    if not parts:
        return ()
    ranked = sorted(range(len(parts)), key=lambda i: -_content(parts[i], glossary))[:MAX_POINTS]
    return tuple(KeyPoint(parts[i][:200], _terms(parts[i], glossary), 1) for i in sorted(ranked))


def _content(text: str, glossary) -> float:
    return len(glossary.concepts_in(text)) * 2 + len({w for w in tokenize(text, glossary.tokenizer) if len(w) >= 2})


def _terms(sentence: str, glossary) -> tuple[tuple[str, ...], ...]:
    """Up to three term groups: the concepts a sentence names, else its longest words."""
    names = [glossary.concepts[c].zh[0] for c in glossary.concepts_in(sentence)][:3]
    if not names:
        words = sorted({w for w in tokenize(sentence, glossary.tokenizer) if len(w) >= 2}, key=lambda w: (-len(w), w))
        names = words[:2]
    return tuple((n,) for n in names)


def catalog(bank: Bank, data: IndexData) -> Bank:
    """The bank with the documents' Q&A pairs added as items, each document a topic."""
    items = doc_items(data, bank.glossary)
    if not items:
        return bank
    topics = dict(bank.topics)
    topics[ALL_DOCS] = Topic(ALL_DOCS, "我的资料（全部）", "My documents (all)")
    for item in items.values():
        topics.setdefault(item.topic, Topic(item.topic, f"我的资料 · {item.file}", f"My documents · {item.file}"))
    return replace(bank, items={**bank.items, **items}, topics=topics)


def expand_topics(topics, catalog_topics) -> tuple[str, ...]:
    """``docs`` stands for every document's topic."""
    out = []
    for topic in topics:
        out += [t for t in catalog_topics if t.startswith(TOPIC_PREFIX)] if topic == ALL_DOCS else [topic]
    return tuple(dict.fromkeys(out))
