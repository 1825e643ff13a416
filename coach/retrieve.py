"""Hybrid retrieval: BM25 over jieba tokens and dense search, fused by score.

Four signals are fused per unit with fixed weights: BM25 on the question
field and on the body (each divided by its best score for the query, so both
lie in [0, 1]), and the cube of the cosine of the query with the unit's closest question
phrasing (every phrasing is its own vector) and with its body. The question
signals weigh more, because a user's query is a question and an answer can
mention a term in passing. The weights were chosen on the retrieval
development set (docs/benchmarks.md); a weighted sum of scores beat
reciprocal-rank fusion there (R@1 0.82 vs 0.78), because a rank throws away
how far ahead the best unit is.

The glossary joins both sides of BM25: a ``§concept`` token for each concept
a text names, so "BN" meets "批归一化". For the dense side the query gets the
canonical names of its concepts appended ("BN有啥用" -> "... (批归一化 (Batch
Normalization, BN))"), which an embedder needs for abbreviations; a unit
scores the better cosine of the raw and the expanded query, so a near-verbatim
question keeps its near-1 match. Documents are embedded as written
(expanding them too lowered R@1 on the dev set).

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
from .text import add_words, compact, tokenize

# Chosen on the retrieval dev set (docs/benchmarks.md); each single mode keeps its own best mix.
WEIGHTS = {
    "hybrid": {"bm25_q": 0.10, "bm25_b": 0.20, "dense_q": 1.0, "dense_b": 0.25},
    "bm25": {"bm25_q": 1.0, "bm25_b": 0.5},
    "dense": {"dense_q": 1.0, "dense_b": 0.5},
}
POOL = 100  # dense candidates (units) considered per field
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

    def scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 of every unit, divided by the best one (all zeros when nothing matches)."""
        if not tokens or not self.size:
            return np.zeros(self.size, np.float32)
        scores = np.asarray(self.model.get_scores(tokens), dtype=np.float32)
        best = float(scores.max()) if len(scores) else 0.0
        return scores / best if best > 0 else scores


class Retriever:
    """Search over an ``IndexData`` with one embedder and glossary, shared by every caller."""

    def __init__(self, data: IndexData, embedder, glossary: Glossary, reranker: Reranker | None = None):
        self.data, self.embedder, self.glossary, self.reranker = data, embedder, glossary, reranker
        add_words(glossary.names)  # jieba keeps "批归一化" whole only once it knows the word
        units = data.units
        self.bm25_q = _Field([unit_tokens(u.qtexts, glossary) if u.qtexts else [] for u in units])
        self.bm25_b = _Field([unit_tokens([u.text], glossary) for u in units])
        self._text_keys: dict[int, str] = {}

    def search(self, query: str, k: int = 5, mode: str = "hybrid", kind: str | None = None) -> list[Hit]:
        """The ``k`` best hits for ``query``; ``kind`` keeps only "bank" or "doc" units."""
        fused = _fuse(self._signals(query, mode), WEIGHTS[mode])
        if kind:
            fused = [(u, s) for u, s in fused if self.data.units[u].kind == kind]
        fused = self._dedupe(fused, limit=max(k, 20) if self.reranker is not None else k)
        if self.reranker is not None and fused:
            fused = self._rerank(query, fused)
        return [self._hit(rank, u, s) for rank, (u, s) in enumerate(fused[:k], 1)]

    def _signals(self, query: str, mode: str) -> dict[str, dict[int, float]]:
        """Per signal, the units it scores above zero: ``{"bm25_q": {unit: score}, ...}``."""
        signals: dict[str, dict[int, float]] = {}
        if mode in ("hybrid", "bm25"):
            tokens = unit_tokens([query], self.glossary)
            for name, field in (("bm25_q", self.bm25_q), ("bm25_b", self.bm25_b)):
                scores = field.scores(tokens)
                signals[name] = {int(i): float(scores[i]) for i in np.flatnonzero(scores > 0)}
        if mode in ("hybrid", "dense") and len(self.data.vectors):
            signals.update(self._dense(query))
        return signals

    def _dense(self, query: str) -> dict[str, dict[int, float]]:
        """Best cosine per unit and field among the nearest vectors (faiss inner product)."""
        queries = list(dict.fromkeys([query, self.glossary.expand(query)]))
        n = min(POOL * 8, len(self.data.vectors))
        scores, rows = self.data.search_index().search(self.embedder.embed_queries(queries), n)
        best: dict[str, dict[int, float]] = {"dense_q": {}, "dense_b": {}}
        for score, row in zip(scores.ravel(), rows.ravel()):
            if row >= 0:
                name = "dense_q" if self.data.vec_field[row] == 0 else "dense_b"
                unit = int(self.data.vec_unit[row])
                best[name][unit] = max(best[name].get(unit, 0.0), float(score))
        # cubed: a clearly closest question (0.9 vs 0.65) should count for more than a linear gap says
        return {name: {u: v ** 3 for u, v in d.items()} for name, d in best.items()}

    def _dedupe(self, fused: list[tuple[int, float]], limit: int) -> list[tuple[int, float]]:
        """The best unit of each group, skipping repeated texts, until ``limit`` are found."""
        seen_groups, seen_texts, out = set(), set(), []
        for u, s in fused:
            unit = self.data.units[u]
            if u not in self._text_keys:
                self._text_keys[u] = compact(unit.text[:300])
            if unit.group in seen_groups or self._text_keys[u] in seen_texts:
                continue
            seen_groups.add(unit.group)
            seen_texts.add(self._text_keys[u])
            out.append((u, s))
            if len(out) >= limit:
                break
        return out

    def _rerank(self, query: str, fused: list[tuple[int, float]]) -> list[tuple[int, float]]:
        passages = [_passage(self.data.units[u]) for u, _ in fused]
        scores = self.reranker.score(query, passages)
        return sorted(((u, float(s)) for (u, _), s in zip(fused, scores)), key=lambda x: -x[1])

    def _hit(self, rank: int, u: int, score: float) -> Hit:
        unit = self.data.units[u]
        return Hit(rank=rank, score=round(score, 6), text=unit.text, source=unit.source, title=unit.title,
                   item_id=unit.item_id or None, kind=unit.kind, position=unit.position, topic=unit.topic)


def _fuse(signals: dict[str, dict[int, float]], weights: dict[str, float]) -> list[tuple[int, float]]:
    """Weighted sum of the signals per unit, best first (a unit a signal missed scores 0 there)."""
    scores: dict[int, float] = {}
    for name, by_unit in signals.items():
        weight = weights[name]
        for unit, value in by_unit.items():
            scores[unit] = scores.get(unit, 0.0) + weight * value
    return sorted(scores.items(), key=lambda x: (-x[1], x[0]))


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
