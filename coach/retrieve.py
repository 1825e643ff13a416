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

from functools import cached_property
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np

from . import relevance as rel
from .glossary import Glossary
from .index import IndexData, Unit
from .text import compact, tokenize

# Chosen on the retrieval dev set (docs/benchmarks.md); each single mode keeps its own best mix.
WEIGHTS = {
    "hybrid": {"bm25_q": 0.10, "bm25_b": 0.20, "dense_q": 1.0, "dense_b": 0.25},
    "bm25": {"bm25_q": 1.0, "bm25_b": 0.5},
    "dense": {"dense_q": 1.0, "dense_b": 0.5},
}
POOL = 100  # dense candidates (units) considered per field
TWIN_COS = 0.85  # two units whose questions are this close ask the same thing (see relevance.add_gaps)
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
    relevance: float = 0.0  # calibrated probability that this hit answers the query (see relevance.py)
    features: dict = field(default_factory=dict, repr=False, compare=False)  # the signals behind relevance

    @property
    def answers(self) -> bool:
        return self.relevance >= rel.ANSWER

    @property
    def group(self) -> str:
        return f"bank:{self.item_id}" if self.kind == "bank" else f"doc:{self.source}#{self.title or self.position}"

    def to_json(self) -> dict:
        out = asdict(self)
        out.pop("features")
        return out


@dataclass
class Lookup:
    """What the knowledge base holds for one query: bank items and document chunks, apart.

    Each list is sorted by calibrated relevance. ``answer`` is the best hit that answers
    the query (relevance >= ``relevance.ANSWER``), from either list; when a document and
    a bank item both answer, the higher relevance leads and the other supports it.
    """

    query: str
    bank: list[Hit]
    docs: list[Hit]

    @property
    def answers(self) -> list[Hit]:
        """Every answering hit, best first (at most one per bank item or document Q&A pair)."""
        return sorted((h for h in self.bank + self.docs if h.answers), key=lambda h: (-h.relevance, -h.score))

    @property
    def answer(self) -> Hit | None:
        found = self.answers
        return found[0] if found else None

    def related(self, limit: int = 4) -> list[Hit]:
        """Hits worth showing as "可能相关": close to the query, but not answers."""
        near = [h for h in self.bank + self.docs if rel.RELATED <= h.relevance < rel.ANSWER]
        return sorted(near, key=lambda h: (-h.relevance, -h.score))[:limit]

    def without(self, groups: set[str]) -> "Lookup":
        return Lookup(self.query, [h for h in self.bank if h.group not in groups],
                      [h for h in self.docs if h.group not in groups])

    def merged(self, other: "Lookup") -> "Lookup":
        """Both lookups' hits, each group once at its best relevance (a follow-up read two ways)."""
        def best(a: list[Hit], b: list[Hit]) -> list[Hit]:
            by_group: dict[str, Hit] = {}
            for hit in a + b:
                if hit.group not in by_group or hit.relevance > by_group[hit.group].relevance:
                    by_group[hit.group] = hit
            return sorted(by_group.values(), key=lambda h: (-h.relevance, -h.score))
        return Lookup(self.query, best(self.bank, other.bank), best(self.docs, other.docs))


class Reranker(Protocol):
    id: str

    def score(self, query: str, passages: list[str]) -> list[float]: ...


def unit_tokens(texts: list[str], glossary: Glossary) -> list[str]:
    """BM25 tokens of ``texts`` plus one ``§id`` token per glossary concept named."""
    joined = "\n".join(t for t in texts if t)
    return tokenize(joined, glossary.tokenizer) + [f"§{cid}" for cid in glossary.concepts_in(joined)]


TERMS_VERSION = 1  # bump when tokenize, unit_tokens or content_terms change what they return


def analyse(unit: Unit, glossary: Glossary) -> dict:
    """What retrieval needs of a unit's text: BM25 tokens of its question and body, and the
    content terms of each phrasing. Saved with the unit (``Unit.terms``) when it is written, so
    loading an index does not run jieba and the glossary over every unit again (about 5 s for
    the bank); valid for the glossary the generation was built with (the manifest's digest)."""
    return {"v": TERMS_VERSION,
            "q": unit_tokens(unit.qtexts, glossary) if unit.qtexts else [],
            "b": unit_tokens([unit.text], glossary),
            "p": [sorted(rel.content_terms(q, glossary)) for q in unit.qtexts],
            "bt": sorted(rel.content_terms(unit.text, glossary))}


def _analysed(unit: Unit, glossary: Glossary) -> dict:
    terms = unit.terms
    if (isinstance(terms, dict) and terms.get("v") == TERMS_VERSION
            and isinstance(terms.get("p"), list) and len(terms["p"]) == len(unit.qtexts)):
        return terms
    return analyse(unit, glossary)


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


RELEVANCE_POOL = 8  # hybrid search judges at least this many candidates before ranking them by relevance


class Retriever:
    """Search over an ``IndexData`` with one embedder and glossary, shared by every caller."""

    def __init__(self, data: IndexData, embedder, glossary: Glossary, reranker: Reranker | None = None,
                 model: rel.RelevanceModel | None = None, base: "Retriever | None" = None):
        """``base``: the shared index a user's small document index sits beside; its question terms
        count in this one's term statistics, so a query's words are as familiar (and a user's notes
        score as they would in the shared index) however few units this one has."""
        self.data, self.embedder, self.glossary, self.reranker = data, embedder, glossary, reranker
        self.model = model or rel.default_model()
        units = data.units
        analysed = [_analysed(u, glossary) for u in units]
        self.bm25_q = _Field([a["q"] for a in analysed])
        self.bm25_b = _Field([a["b"] for a in analysed])
        self._text_keys: dict[int, str] = {}
        self._phrasings = [[set(p) for p in a["p"]] for a in analysed]
        self._q_terms = [set().union(*p) if p else set() for p in self._phrasings]
        # the body's content terms, saved by analyse() since "bt" was added: computing them took 4 ms a
        # unit on its first appearance in a shortlist; read into a set on first use (older indexes: computed)
        self._saved_b_terms = [a.get("bt") if isinstance(a.get("bt"), list) else None for a in analysed]
        self._b_terms: dict[int, tuple[set[str], str]] = {}
        self._q_texts = [compact(" ".join(u.qtexts)) for u in units]
        self.terms = rel.TermStats([t for t in self._q_terms + (base._q_terms if base else []) if t])
        order = np.argsort(data.vec_unit, kind="stable")
        bounds = np.searchsorted(data.vec_unit[order], np.arange(len(units) + 1))
        self._rows = [order[bounds[i]:bounds[i + 1]] for i in range(len(units))]

    @cached_property
    def speller(self):
        """Reads typos in a query (``spelling.py``): homophones of glossary names, one-slip Latin words."""
        from .spelling import Speller

        return Speller(self.glossary, [" ".join([u.text, *u.qtexts]) for u in self.data.units])

    def read(self, query: str) -> str:
        """The query with its typos read (过你和 -> 过拟合, LSMT -> LSTM); otherwise as typed."""
        return self.speller.correct(query)[0]

    def search(self, query: str, k: int = 5, mode: str = "hybrid", kind: str | None = None,
               qvecs: np.ndarray | None = None) -> list[Hit]:
        """The ``k`` best hits for ``query``; ``kind`` keeps only "bank" or "doc" units.

        Hybrid search ranks the shortlist by calibrated relevance (what chat and grading use:
        the relevance model weighs term coverage and missing key terms, not only closeness),
        ties by fused score; with a reranker, or in the "bm25" and "dense" ablations, by
        score. Every hit carries its ``relevance``. ``qvecs``: the query's vectors when the
        caller has them (``query_vectors``).
        """
        query = self.read(query)
        qvecs = self.query_vectors(query) if qvecs is None else qvecs
        hybrid = self._hybrid(query, qvecs)  # relevance is judged on the hybrid candidates, whatever the mode
        fused = hybrid if mode == "hybrid" else _fuse(self._signals(query, mode, qvecs), WEIGHTS[mode])
        if kind:
            fused = [(u, s) for u, s in fused if self.data.units[u].kind == kind]
        by_relevance = mode == "hybrid" and self.reranker is None
        fused = self._dedupe(fused, limit=max(k, 20) if self.reranker is not None else max(k, RELEVANCE_POOL)
                             if by_relevance else k)
        if self.reranker is not None and fused:
            fused = self._rerank(query, fused)
        pool = fused if by_relevance else fused[:k]
        scored = {h.group: h for hits in self._candidates(query, qvecs, hybrid, pool).values() for h in hits}
        hits = [self._hit(0, u, s) for u, s in pool]
        for hit in hits:
            hit.relevance, hit.features = scored[hit.group].relevance, scored[hit.group].features
        if by_relevance:
            hits.sort(key=lambda h: (-h.relevance, -h.score))
        hits = hits[:k]
        for rank, hit in enumerate(hits, 1):
            hit.rank = rank
        return hits

    def candidates(self, query: str, per_kind: int = 8, qvecs: np.ndarray | None = None) -> dict[str, list[Hit]]:
        """Bank items and document chunks as two lists, each sorted by calibrated relevance.

        The two kinds are retrieved apart so that a user's notes are never crowded out of
        the shortlist by bank items that merely share words with the query.
        """
        query = self.read(query)
        qvecs = self.query_vectors(query) if qvecs is None else qvecs
        return self._candidates(query, qvecs, self._hybrid(query, qvecs), [], per_kind)

    def _hybrid(self, query: str, qvecs: np.ndarray) -> list[tuple[int, float]]:
        return _fuse(self._signals(query, "hybrid", qvecs), WEIGHTS["hybrid"])

    def _candidates(self, query: str, qvecs: np.ndarray, fused: list[tuple[int, float]],
                    extra: list[tuple[int, float]], per_kind: int = 8) -> dict[str, list[Hit]]:
        """Each kind's top ``per_kind`` units of ``fused`` (plus ``extra`` ones) with features and relevance."""
        terms = rel.query_terms(query, self.glossary, self.terms)
        out: dict[str, list[Hit]] = {}
        for kind in ("bank", "doc"):
            picked = self._dedupe([(u, s) for u, s in fused if self.data.units[u].kind == kind], limit=per_kind)
            have = {self.data.units[u].group for u, _ in picked}
            picked += [(u, s) for u, s in extra if self.data.units[u].kind == kind and self.data.units[u].group not in have]
            feats = [self._features(terms, qvecs, u) for u, _ in picked]
            rel.add_gaps(feats, self._twins([u for u, _ in picked]))
            hits = [self._hit(0, u, s) for u, s in picked]
            for hit, f in zip(hits, feats):
                hit.features, hit.relevance = f, round(self.model.probability(f, kind), 4)
            hits.sort(key=lambda h: (-h.relevance, -h.score))
            for rank, hit in enumerate(hits, 1):
                hit.rank = rank
            out[kind] = hits
        return out

    def lookup(self, query: str, per_kind: int = 8, qvecs: np.ndarray | None = None) -> Lookup:
        found = self.candidates(query, per_kind, qvecs)
        return Lookup(query, found["bank"], found["doc"])

    def _twins(self, units: list[int]) -> list[set[int]]:
        """Per unit, the positions of the others whose questions are near-duplicates of its own."""
        vecs = []
        for u in units:
            rows = self._rows[u][self.data.vec_field[self._rows[u]] == 0]
            vecs.append(self.data.vectors[rows] if len(rows) else np.zeros((0, self.data.dim), np.float32))
        out = [set() for _ in units]
        for i in range(len(units)):
            for j in range(i + 1, len(units)):
                if len(vecs[i]) and len(vecs[j]) and float((vecs[i] @ vecs[j].T).max()) >= TWIN_COS:
                    out[i].add(j)
                    out[j].add(i)
        return out

    def query_vectors(self, query: str) -> np.ndarray:
        query = self.read(query)
        return self.embedder.embed_queries(list(dict.fromkeys([query, self.glossary.expand(query)])))

    def _features(self, terms: rel.QueryTerms, qvecs: np.ndarray, u: int) -> dict[str, float]:
        rows = self._rows[u]
        sims = self.data.vectors[rows] @ qvecs.T if len(rows) else np.zeros((0, len(qvecs)))
        fields = self.data.vec_field[rows]
        q_cos = float(sims[fields == 0].max()) if (fields == 0).any() else 0.0
        b_cos = float(sims[fields == 1].max()) if (fields == 1).any() else 0.0
        if u not in self._b_terms:
            if len(self._b_terms) > 50_000:
                self._b_terms = {}
            body, saved = self.data.units[u].text, self._saved_b_terms[u]
            self._b_terms[u] = (set(saved) if saved is not None else rel.content_terms(body, self.glossary),
                                compact(body))
        b_terms, b_text = self._b_terms[u]
        q_back = rel.back_cover(terms, self._phrasings[u], self.terms)
        return rel.features(terms, self._q_terms[u], b_terms, self._q_texts[u], b_text, q_cos, b_cos, q_back)

    def _signals(self, query: str, mode: str, qvecs: np.ndarray | None) -> dict[str, dict[int, float]]:
        """Per signal, the units it scores above zero: ``{"bm25_q": {unit: score}, ...}``."""
        signals: dict[str, dict[int, float]] = {}
        if mode in ("hybrid", "bm25"):
            tokens = unit_tokens([query], self.glossary)
            for name, field in (("bm25_q", self.bm25_q), ("bm25_b", self.bm25_b)):
                scores = field.scores(tokens)
                signals[name] = {int(i): float(scores[i]) for i in np.flatnonzero(scores > 0)}
        if mode in ("hybrid", "dense") and len(self.data.vectors):
            signals.update(self._dense(qvecs))
        return signals

    def _dense(self, qvecs: np.ndarray) -> dict[str, dict[int, float]]:
        """Best cosine per unit and field among the nearest vectors (faiss inner product)."""
        n = min(POOL * 8, len(self.data.vectors))
        scores, rows = self.data.search_index().search(qvecs, n)
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
