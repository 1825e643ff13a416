"""Hybrid retrieval: BM25 over jieba tokens and dense search, fused by rank.

Four ranked lists are fused with weighted reciprocal-rank fusion (RRF):
BM25 on the question field, BM25 on the body, dense on the question field
(every phrasing of a question is its own vector; a unit scores its best one)
and dense on the body. Question-field lists weigh more, because a user's
query is a question and an answer can mention a term in passing. Glossary
concepts join both sides: BM25 gets a ``§concept`` token for each concept a
text names, the embedder sees the concept's canonical names appended.

Hits are de-duplicated by group (all chunks of one Q&A pair, one bank item)
and by identical text. An optional reranker re-scores the fused top
candidates when the user configures one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from .glossary import Glossary
from .index import IndexData, Unit
from .text import compact, tokenize

RRF_K = 20
WEIGHTS = {"bm25_q": 1.0, "bm25_b": 0.5, "dense_q": 1.0, "dense_b": 0.5}
POOL = 60  # candidates taken from each list before fusion
MODES = ("hybrid", "bm25", "dense")


@dataclass
class Hit:
    rank: int
    score: float
    text: str
    source: str
    title: str
    item_id: str | None
    kind: str
    position: int
    topic: str

    def to_json(self) -> dict:
        return asdict(self)


class Reranker(Protocol):
    id: str

    def score(self, query: str, passages: list[str]) -> list[float]: ...


def unit_tokens(texts: list[str], glossary: Glossary) -> list[str]:
    """BM25 tokens of ``texts`` plus one ``§id`` token per glossary concept named."""
    joined = "\n".join(t for t in texts if t)
    return tokenize(joined) + [f"§{cid}" for cid in glossary.concepts_in(joined)]


class _Field:
    """A BM25 index over one field of every unit (bm25s, rebuilt in memory at load)."""

    def __init__(self, docs: list[list[str]]):
        import bm25s

        self.size = len(docs)
        self.model = bm25s.BM25()
        # bm25s cannot index an empty document; a token no query has keeps positions aligned
        self.model.index([d or ["∅"] for d in docs], show_progress=False)

    def ranked(self, tokens: list[str], pool: int) -> list[int]:
        if not tokens or not self.size:
            return []
        scores = self.model.get_scores(tokens)
        top = np.argsort(-scores)[:pool]
        return [int(i) for i in top if scores[i] > 0]


class Retriever:
    """Search over an ``IndexData`` with one embedder and glossary, shared by every caller."""

    def __init__(self, data: IndexData, embedder, glossary: Glossary, reranker: Reranker | None = None):
        self.data, self.embedder, self.glossary, self.reranker = data, embedder, glossary, reranker
        units = data.units
        self.bm25_q = _Field([unit_tokens(u.qtexts, glossary) if u.qtexts else [] for u in units])
        self.bm25_b = _Field([unit_tokens([u.text], glossary) for u in units])

    def search(self, query: str, k: int = 5, mode: str = "hybrid", kind: str | None = None) -> list[Hit]:
        """The ``k`` best hits for ``query``; ``kind`` keeps only "bank" or "doc" units."""
        lists = self._ranked_lists(query, mode)
        fused = _fuse(lists)
        if kind:
            fused = [(u, s) for u, s in fused if self.data.units[u].kind == kind]
        fused = self._dedupe(fused)
        if self.reranker is not None and fused:
            fused = self._rerank(query, fused[: max(k, 20)])
        return [self._hit(rank, u, s) for rank, (u, s) in enumerate(fused[:k], 1)]

    def _ranked_lists(self, query: str, mode: str) -> dict[str, list[int]]:
        lists: dict[str, list[int]] = {}
        if mode in ("hybrid", "bm25"):
            tokens = unit_tokens([query], self.glossary)
            lists["bm25_q"] = self.bm25_q.ranked(tokens, POOL)
            lists["bm25_b"] = self.bm25_b.ranked(tokens, POOL)
        if mode in ("hybrid", "dense") and len(self.data.vectors):
            lists.update(self._dense(query))
        return lists

    def _dense(self, query: str) -> dict[str, list[int]]:
        vector = self.embedder.embed_queries([self.glossary.expand(query)])
        n = min(POOL * 6, len(self.data.vectors))
        scores, rows = self.data.search_index().search(vector, n)
        best: dict[str, dict[int, float]] = {"dense_q": {}, "dense_b": {}}
        for score, row in zip(scores[0], rows[0]):
            if row < 0:
                continue
            name = "dense_q" if self.data.vec_field[row] == 0 else "dense_b"
            unit = int(self.data.vec_unit[row])
            best[name].setdefault(unit, float(score))  # rows come best first
        return {name: sorted(d, key=d.get, reverse=True)[:POOL] for name, d in best.items()}

    def _dedupe(self, fused: list[tuple[int, float]]) -> list[tuple[int, float]]:
        seen_groups, seen_texts, out = set(), set(), []
        for u, s in fused:
            unit = self.data.units[u]
            text_key = compact(unit.text)[:200]
            if unit.group in seen_groups or text_key in seen_texts:
                continue
            seen_groups.add(unit.group)
            seen_texts.add(text_key)
            out.append((u, s))
        return out

    def _rerank(self, query: str, fused: list[tuple[int, float]]) -> list[tuple[int, float]]:
        passages = [_passage(self.data.units[u]) for u, _ in fused]
        scores = self.reranker.score(query, passages)
        return sorted(((u, float(s)) for (u, _), s in zip(fused, scores)), key=lambda x: -x[1])

    def _hit(self, rank: int, u: int, score: float) -> Hit:
        unit = self.data.units[u]
        return Hit(rank=rank, score=round(score, 6), text=unit.text, source=unit.source, title=unit.title,
                   item_id=unit.item_id or None, kind=unit.kind, position=unit.position, topic=unit.topic)


def _fuse(lists: dict[str, list[int]]) -> list[tuple[int, float]]:
    """Weighted reciprocal-rank fusion: sum of weight / (RRF_K + rank) over the lists."""
    scores: dict[int, float] = {}
    for name, ranked in lists.items():
        for rank, unit in enumerate(ranked, 1):
            scores[unit] = scores.get(unit, 0.0) + WEIGHTS[name] / (RRF_K + rank)
    return sorted(scores.items(), key=lambda x: -x[1])


def _passage(unit: Unit) -> str:
    return f"{unit.title}\n{unit.text}" if unit.title else unit.text


class CrossEncoderReranker:
    """A sentence-transformers cross-encoder the user names (COACH_RERANKER)."""

    def __init__(self, name: str):
        from sentence_transformers import CrossEncoder

        from .errors import CoachError

        try:
            self.model = CrossEncoder(name, device="cpu")
        except Exception as exc:
            raise CoachError(f"Could not load the reranker {name!r} ({type(exc).__name__}); "
                             "give a local path, check your network, or unset COACH_RERANKER.") from None
        self.id = f"cross-encoder:{name}"

    def score(self, query: str, passages: list[str]) -> list[float]:
        return [float(s) for s in self.model.predict([(query, p) for p in passages], show_progress_bar=False)]
