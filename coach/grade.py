"""Grading a free-text answer against the key points of a question, offline.

How a grade is made (all deterministic, so the same input gets the same grade):

1. The answer is split into sentences. Each key point gets a coverage in
   [0, 1] that blends two signals: how many of its term groups the answer
   names (glossary-aware: "BN" counts for "批归一化"), and how close in
   meaning the best answer sentence is to the point (cosine of embeddings,
   rescaled between ``SEM_LOW`` and ``SEM_HIGH``). A point is *covered* at
   ``COVERED``; its credit is its coverage, so half a point earns half.
2. The raw score is 10 x the weighted mean credit.
3. Guards make the score hard to game: a keyword list with no explaining
   sentence is capped at 4; an answer that restates the question is capped
   at 2; sentences unrelated to the question add nothing (credit is a max
   over sentences, never a sum); each misconception stated costs 2 points.

Compromises: term lists are written by hand and the semantic signal comes
from a small multilingual encoder, so an unusual but correct wording can be
under-credited; the covered/missed lists show the candidate why. An LLM, when
configured, may rewrite the feedback, never the score.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np
import yaml

from .bank import BankItem, KeyPoint, Misconception
from .config import RESOURCES
from .errors import InputError
from .limits import check_answer
from .text import compact, meaningful_length, normalize, split_sentences

SEM_LOW, SEM_HIGH = 0.30, 0.70  # cosine below LOW means unrelated, above HIGH means same point
# An English answer meets Chinese key points across languages, where the encoder's cosines run lower.
SEM_LOW_EN, SEM_HIGH_EN = 0.20, 0.55
TERM_WEIGHT = 0.55  # share of coverage from terms; the rest from meaning
COVERED = 0.5
KEYWORD_CAP, REPEAT_CAP, MISCONCEPTION_COST = 4.0, 2.0, 2.0
MISCONCEPTION_SIM = 0.40
BANK_MATCH_SIM = 0.62  # a free-text question this close to a bank question is that item
# Denials of a claim ("γ和β不是超参数"); "不会/不能" are left out because claims use them too ("训练中不会改变").
_NEGATION = re.compile(r"不是|并非|并不|不对|错误|误区|误解|\bnot\b|n't|\bwrong\b")
_LIST_SPLIT = re.compile(r"[,，、;；/|\s]+")
_CLAUSE_SPLIT = re.compile(r"[,，;；]")
# A clause with one of these says something about its terms; a keyword list has none.
_PREDICATE = re.compile(r"是|会|可以|能够|把|让|使得|导致|因为|所以|通过|如果|就|用来|用于|可能|需要|不")


@lru_cache(maxsize=1)
def feedback_text() -> dict:
    return yaml.safe_load((RESOURCES / "feedback.yaml").read_text(encoding="utf-8"))


@dataclass
class PointResult:
    point: str
    weight: int
    coverage: float
    covered: bool
    evidence: str | None  # the answer sentence that covers it best
    source: str  # where the reference comes from: "bank:<id>" or a document name


@dataclass
class FoundMisconception:
    claim: str
    correction: str
    sentence: str


@dataclass
class Grade:
    score: float | None  # None when there was nothing to grade
    verdict: str
    item_id: str | None
    question: str
    basis: str  # "bank" or "retrieved"
    covered: list[PointResult] = field(default_factory=list)
    missing: list[PointResult] = field(default_factory=list)
    misconceptions: list[FoundMisconception] = field(default_factory=list)
    feedback: list[str] = field(default_factory=list)
    model_answer: str = ""
    sources: list[dict] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Reference:
    """What an answer is graded against: a bank item, or points drawn from retrieved passages."""

    question: str
    key_points: tuple[KeyPoint, ...]
    misconceptions: tuple[Misconception, ...]
    model_answer: str
    item_id: str | None
    basis: str
    sources: tuple[dict, ...]

    @classmethod
    def from_item(cls, item: BankItem) -> "Reference":
        source = {"source": "bank", "item_id": item.id, "title": item.question, "file": item.file}
        return cls(item.question, item.key_points, item.misconceptions, item.answer, item.id, "bank", (source,))


def is_non_answer(answer: str) -> bool:
    """Blank, or only "不知道" / "跳过" and the like."""
    text = normalize(answer).strip(" 。.!！?？~～…")
    return not text or text in {normalize(w) for w in feedback_text()["skip_words"]}


def verdict_for(score: float) -> str:
    return next(v["label"] for v in feedback_text()["verdicts"] if score >= v["min"])


class Grader:
    """Grades answers with the knowledge base's embedder and glossary; one per process."""

    def __init__(self, kb):
        self.kb = kb
        self._vectors: dict[tuple, np.ndarray] = {}

    # ---- public API ------------------------------------------------------
    def grade(self, answer: str, item_id: str | None = None, question: str | None = None) -> Grade:
        """Grade ``answer`` to a bank item (by id) or to a free-text question."""
        return self.grade_reference(self.reference(item_id=item_id, question=question), answer)

    def grade_reference(self, ref: "Reference", answer: str) -> Grade:
        """Grade ``answer`` against an explicit reference (e.g. only the points a follow-up probes)."""
        answer = check_answer(answer)
        if is_non_answer(answer):
            return self._empty(ref)
        return self._grade(ref, answer)

    def reference(self, item_id: str | None = None, question: str | None = None) -> Reference:
        if item_id:
            return Reference.from_item(self.kb.bank.get(item_id))
        question = (question or "").strip()
        if not question:
            raise InputError("Give a question (a bank item id or the question text) to grade against.")
        if len(question) > 500:
            raise InputError("The question is longer than 500 characters; shorten it.")
        return self._match_question(question)

    # ---- matching a free-text question -----------------------------------
    def _match_question(self, question: str) -> Reference:
        hits = self.kb.search(question, k=3, kind="bank")
        if hits:
            item = self.kb.bank.get(hits[0].item_id)
            if self._question_similarity(question, item) >= BANK_MATCH_SIM:
                return Reference.from_item(item)
        return self._reference_from_passages(question)

    def _question_similarity(self, question: str, item: BankItem) -> float:
        if compact(question) in {compact(q) for q in item.all_questions}:
            return 1.0
        vectors = self._embed([question] + item.all_questions)
        return float(np.max(vectors[1:] @ vectors[0]))

    def _reference_from_passages(self, question: str) -> Reference:
        """Key points from the best passages when no bank item matches."""
        hits = self.kb.search(question, k=3)
        glossary, points, sources = self.kb.bank.glossary, [], []
        for hit in hits:
            sources.append({"source": hit.source, "item_id": hit.item_id, "title": hit.title, "position": hit.position})
            for sentence in split_sentences(hit.text)[:3]:
                terms = tuple((t,) for t in _salient_terms(sentence, glossary))
                if terms and meaningful_length(sentence) >= 8 and len(points) < 5:
                    points.append(KeyPoint(sentence, terms, 1))
        model = "\n\n".join(h.text for h in hits[:2])
        return Reference(question, tuple(points), (), model, None, "retrieved", tuple(sources))

    # ---- grading -----------------------------------------------------------
    def _empty(self, ref: Reference) -> Grade:
        text = feedback_text()
        missing = [PointResult(kp.point, kp.weight, 0.0, False, None, _source_label(ref)) for kp in ref.key_points]
        return Grade(None, "未作答", ref.item_id, ref.question, ref.basis, missing=missing, feedback=[text["empty"]],
                     model_answer=ref.model_answer, sources=list(ref.sources), flags=["empty"])

    def _grade(self, ref: Reference, answer: str) -> Grade:
        sentences = split_sentences(answer) or [answer]
        vectors = self._embed(sentences)
        relevant = self._relevant(ref, sentences, vectors)
        results = self._cover_points(ref, answer, sentences, vectors)
        found = self._misconceptions(ref, sentences, vectors)
        flags = self._flags(ref, answer, sentences, relevant, results)
        score = self._score(results, found, flags)
        return Grade(
            score=score, verdict=verdict_for(score), item_id=ref.item_id, question=ref.question, basis=ref.basis,
            covered=[r for r in results if r.covered], missing=[r for r in results if not r.covered],
            misconceptions=found, feedback=_feedback(ref, results, found, flags, score),
            model_answer=ref.model_answer, sources=list(ref.sources), flags=flags,
        )

    def _cover_points(self, ref: Reference, answer: str, sentences, vectors) -> list[PointResult]:
        glossary = self.kb.bank.glossary
        low, high = (SEM_LOW_EN, SEM_HIGH_EN) if _mostly_english(answer) else (SEM_LOW, SEM_HIGH)
        concepts = set(glossary.concepts_in(answer))
        point_vecs = self._points(ref)
        sims = vectors @ point_vecs.T if len(point_vecs) else np.zeros((len(sentences), 0))
        sims = np.maximum(sims, self._clause_similarity(sentences, point_vecs))
        results = []
        for j, kp in enumerate(ref.key_points):
            hits = [any(glossary.mentions(t, answer, concepts) for t in group) for group in kp.terms]
            term_share = sum(hits) / len(hits) if hits else 0.0
            best = int(np.argmax(sims[:, j]))
            meaning = float(np.clip((sims[best, j] - low) / (high - low), 0, 1))
            coverage = round(TERM_WEIGHT * term_share + (1 - TERM_WEIGHT) * meaning, 3)
            evidence = _evidence(kp, sentences, sims[:, j], glossary)
            results.append(PointResult(kp.point, kp.weight, coverage, coverage >= COVERED,
                                       evidence if coverage >= COVERED else None, _source_label(ref)))
        return results

    def _clause_similarity(self, sentences: list[str], point_vecs: np.ndarray) -> np.ndarray:
        """Per sentence, its best clause's cosine with each point.

        A long comma-joined sentence often makes several points; its one embedding is a
        blur of all of them, so each clause is compared on its own as well.
        """
        out = np.zeros((len(sentences), len(point_vecs)), np.float32)
        clauses, owner = [], []
        for i, sentence in enumerate(sentences):
            parts = [c for c in _CLAUSE_SPLIT.split(sentence) if meaningful_length(c) >= 6]
            if len(parts) >= 2:
                clauses += parts
                owner += [i] * len(parts)
        if clauses and len(point_vecs):
            sims = self._embed(clauses) @ point_vecs.T
            for row, i in enumerate(owner):
                out[i] = np.maximum(out[i], sims[row])
        return out

    def _misconceptions(self, ref: Reference, sentences, vectors) -> list[FoundMisconception]:
        glossary, found = self.kb.bank.glossary, []
        if not ref.misconceptions:
            return found
        claims = self._embed([m.claim for m in ref.misconceptions])
        sims = vectors @ claims.T
        for j, m in enumerate(ref.misconceptions):
            for i, sentence in enumerate(sentences):
                signalled = all(any(glossary.mentions(t, sentence) for t in g) for g in m.signals)
                negated = bool(_NEGATION.search(normalize(sentence))) and not _NEGATION.search(normalize(m.claim))
                if signalled and not negated and sims[i, j] >= MISCONCEPTION_SIM:
                    found.append(FoundMisconception(m.claim, m.correction, sentence))
                    break
        return found

    def _relevant(self, ref: Reference, sentences, vectors) -> list[bool]:
        """Which sentences are about the question at all (for padding and off-topic checks)."""
        anchor = self._cached(("anchor", ref.question, ref.model_answer[:400]),
                              lambda: self._embed([ref.question, ref.model_answer[:400]]))
        floor = [SEM_LOW_EN if _mostly_english(s) else SEM_LOW for s in sentences]
        return [bool(max(v @ anchor[0], v @ anchor[1]) >= f) for v, f in zip(vectors, floor)]

    def _flags(self, ref: Reference, answer: str, sentences, relevant, results) -> list[str]:
        flags = []
        if not any(relevant) and max((r.coverage for r in results), default=0) < COVERED:
            flags.append("off_topic")
        elif not all(relevant) and len(sentences) > 1:
            flags.append("padded")
        if _is_keyword_list(answer):
            flags.append("keyword_only")
        if _restates(ref.question, answer):
            flags.append("repeat")
        return flags

    def _score(self, results: list[PointResult], found, flags) -> float:
        total = sum(r.weight for r in results) or 1
        score = 10 * sum(r.weight * _credit(r.coverage) for r in results) / total
        if "keyword_only" in flags:
            score = min(score, KEYWORD_CAP)
        if "repeat" in flags:
            score = min(score, REPEAT_CAP)
        score -= MISCONCEPTION_COST * len(found)
        return round(float(np.clip(score, 0, 10)), 1)

    # ---- embeddings ----------------------------------------------------------
    def _embed(self, texts: list[str]) -> np.ndarray:
        return self.kb.embedder.embed_queries(list(texts))

    def _points(self, ref: Reference) -> np.ndarray:
        # keyed by the points themselves: a follow-up may grade against a subset of an item's points
        key = ("points", *(kp.point for kp in ref.key_points))
        return self._cached(key, lambda: self._embed([kp.point for kp in ref.key_points]) if ref.key_points
                            else np.zeros((0, self.kb.embedder.dim), np.float32))

    def _cached(self, key: tuple, make) -> np.ndarray:
        """Embeddings of a reference's fixed texts, computed once per process (they never change)."""
        if key not in self._vectors:
            self._vectors[key] = make()
        return self._vectors[key]


def _credit(coverage: float) -> float:
    """Credit for a point: little for a faint echo, full once clearly made."""
    return float(np.clip((coverage - 0.15) / (0.75 - 0.15), 0, 1))


def _evidence(kp: KeyPoint, sentences, sims, glossary) -> str:
    """The sentence that best makes the point: most term groups, then closest meaning."""
    def strength(i: int) -> tuple:
        groups = sum(any(glossary.mentions(t, sentences[i]) for t in g) for g in kp.terms)
        return groups, float(sims[i])
    return sentences[max(range(len(sentences)), key=strength)]


def _mostly_english(text: str) -> bool:
    norm = normalize(text)
    return len(re.findall(r"[a-z]+", norm)) > len(re.findall(r"[\u4e00-\u9fff]", norm))


def _is_keyword_list(answer: str) -> bool:
    """No clause long enough to explain anything: "BN, 均值方差, γβ, 加速收敛"."""
    clauses = [c for c in _LIST_SPLIT.split(normalize(answer)) if c]
    english = _mostly_english(answer)
    longest = max((meaningful_length(c) for c in re.split(r"[,，、;；/|\n。.!?！？]+", answer)), default=0)
    if english:
        return longest < 5 and len(clauses) >= 2
    # Chinese has no spaces between words, so a space marks a list: "γ β 可学习 缩放 平移"
    spaced = max((meaningful_length(c) for c in re.split(r"[,，、;；/|\s。.!?！？]+", answer)), default=0)
    return min(longest, spaced) < 8 and len(clauses) >= 2 and not _PREDICATE.search(answer)


def _restates(question: str, answer: str) -> bool:
    """The answer says little beyond the question's own words, or beyond itself.

    Either most of its character pairs come from the question, or it is a tautology
    that keeps repeating a few pairs ("偏差和方差就是偏差和方差").
    """
    q, a = (re.sub(r"[^\w]", "", compact(t)) for t in (question, answer))
    pairs = [a[i:i + 2] for i in range(len(a) - 1)]
    grams = set(pairs)
    if not grams:
        return False
    qgrams = {q[i:i + 2] for i in range(len(q) - 1)}
    novel = len(grams - qgrams)
    copied = len(grams & qgrams) / len(grams) >= 0.6 and (novel <= 12 or novel / len(grams) <= 0.3)
    circular = len(pairs) >= 12 and len(grams) / len(pairs) <= 0.7 and novel <= 14
    return copied or circular


def _salient_terms(sentence: str, glossary) -> list[str]:
    """Terms that mark a retrieved sentence's point: glossary concepts, else long words."""
    names = [glossary.concepts[c].zh[0] for c in glossary.concepts_in(sentence)]
    if names:
        return names[:3]
    from .text import tokenize

    return [w for w in tokenize(sentence) if len(w) >= 2][:3]


def _source_label(ref: Reference) -> str:
    if ref.item_id:
        return f"bank:{ref.item_id}"
    return ", ".join(dict.fromkeys(s["source"] for s in ref.sources)) or "retrieved"


def _feedback(ref: Reference, results, found, flags, score: float) -> list[str]:
    text = feedback_text()
    out = []
    if ref.basis == "retrieved":
        out.append(text["retrieved_basis"])
    for flag in ("off_topic", "repeat", "keyword_only", "padded"):
        if flag in flags:
            out.append(text[flag])
    out += [text["misconception"].format(correction=m.correction) for m in found]
    missing = sorted((r for r in results if not r.covered), key=lambda r: -r.weight)
    out += [text["missing"].format(point=r.point) for r in missing[:3]]
    if not missing and not found:
        out.append(text["strong"] if score >= 8.5 else text["all_covered"])
    return out
