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
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import yaml

from . import claims
from .bank import BankItem, KeyPoint, Misconception
from .config import RESOURCES
from .errors import InputError
from .limits import check_answer
from .relevance import named_terms
from .text import compact, meaningful_length, normalize, split_sentences

SEM_LOW, SEM_HIGH = 0.30, 0.70  # cosine below LOW means unrelated, above HIGH means same point
# An English answer meets Chinese key points across languages, where the encoder's cosines run lower.
SEM_LOW_EN, SEM_HIGH_EN = 0.20, 0.55
TERM_WEIGHT = 0.55  # share of coverage from terms; the rest from meaning
COVERED = 0.5
KEYWORD_CAP, REPEAT_CAP, OFF_TOPIC_CAP, MISCONCEPTION_COST = 4.0, 2.0, 1.0, 2.0
MISCONCEPTION_SIM = 0.40
NEIGHBOUR_MISCONCEPTIONS = True
PADDING_SIM = 0.30  # an unrelated sentence this close to a relevant one of the answer is part of it
PADDING_FLOOR = 0.18  # below this a sentence is unrelated to the question, its answer and every point
ALTERNATIVE_GAP = 0.10  # a second answering item this close in relevance is graded too

_LIST_SPLIT = re.compile(r"[,，、;；/|\s]+")
_CLAUSE_SPLIT = re.compile(r"[,，;；]")
# A clause with one of these says something about its terms; a keyword list has none.
_PREDICATE = re.compile(r"是|会|可以|能够|把|让|使得|导致|因为|所以|通过|如果|就|用|加|做|靠|可能|需要|不")


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
    basis: str  # "bank", "document" (a Q&A pair of the user's documents) or "none" (nothing to grade against)
    covered: list[PointResult] = field(default_factory=list)
    missing: list[PointResult] = field(default_factory=list)
    misconceptions: list[FoundMisconception] = field(default_factory=list)
    feedback: list[str] = field(default_factory=list)
    model_answer: str = ""
    sources: list[dict] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    flag_evidence: dict[str, str] = field(default_factory=dict)  # flag -> the sentence that raised it
    # with an LLM configured (llm.py): the feedback as a paragraph, a second-opinion score shown beside
    # the offline one (never instead), and why either is missing when the endpoint failed
    llm_feedback: str = ""
    second_opinion: dict | None = None
    llm_note: str = ""

    def to_json(self) -> dict:
        return asdict(self)


class Analysis(NamedTuple):
    results: list[PointResult]
    found: list[FoundMisconception]
    flags: dict[str, str]  # flag -> the sentence that raised it
    signals: dict[str, float]


@dataclass(frozen=True)
class Reference:
    """What an answer is graded against: a bank item, or a Q&A pair of the user's documents."""

    question: str
    key_points: tuple[KeyPoint, ...]
    misconceptions: tuple[Misconception, ...]
    model_answer: str
    item_id: str | None
    basis: str  # "bank", "document", or "none" when nothing answers the question
    sources: tuple[dict, ...]
    alternatives: tuple[str, ...] = ()  # other items that answer the question about as well
    parts: tuple["Reference", ...] = ()  # a question that asks several things: one reference per thing

    @classmethod
    def from_item(cls, item: BankItem) -> "Reference":
        if item.id.startswith("doc-"):  # a Q&A pair of the user's documents (see documents.py)
            source = {"source": item.file, "item_id": item.id, "title": item.question}
            return cls(item.question, item.key_points, (), item.answer, item.id, "document", (source,))
        source = {"source": "bank", "item_id": item.id, "title": item.question, "file": item.file}
        answer = item.answer
        if item.code:  # a coding item is graded on the approach; its reference code is shown with the answer
            answer = f"{item.answer.rstrip()}\n\n参考代码:\n```python\n{item.code.rstrip()}\n```"
        return cls(item.question, item.key_points, item.misconceptions, answer, item.id, "bank", (source,))


def is_non_answer(answer: str) -> bool:
    """Blank, or only "不知道" / "跳过" and the like."""
    text = normalize(answer).strip(" 。.!！?？~～…")
    return not text or text in {normalize(w) for w in feedback_text()["skip_words"]}


def verdict_for(score: float) -> str:
    return next(v["label"] for v in feedback_text()["verdicts"] if score >= v["min"])


class Grader:
    """Grades answers with the knowledge base's embedder and glossary; one per process."""

    def __init__(self, kb, model=None, llm=None):
        self.kb, self.model = kb, model  # a scoring.ScoreModel; None: the shipped one; scoring.RULES: none
        self.llm = llm  # an llm.ChatModel: feedback in words, follow-ups, a second opinion; never the score
        self._vectors: dict[tuple, np.ndarray] = {}
        self._concepts: dict[tuple, set[str]] = {}
        self._neighbour_cache: dict[tuple, list[Misconception]] = {}

    # ---- public API ------------------------------------------------------
    def grade(self, answer: str, item_id: str | None = None, question: str | None = None) -> Grade:
        """Grade ``answer`` to a bank item (by id) or to a free-text question.

        When another item answers a free-text question about as well, the answer is graded
        against both and keeps the reference it fits; the feedback names the other one.
        """
        ref = self.reference(item_id=item_id, question=question)
        grade = self.grade_reference(ref, answer)
        if ref.parts:
            return self.explain(_joined(ref, [self.grade_reference(r, answer) for r in ref.parts]), answer)
        for other in ref.alternatives:
            alt = self.grade_reference(Reference.from_item(self.kb.catalog.get(other)), answer)
            if (alt.score or 0) > (grade.score or 0):
                alt.feedback.insert(0, feedback_text()["alternative"].format(question=ref.question))
                grade = alt
            elif grade.score is not None:
                grade.feedback.insert(0, feedback_text()["alternative"].format(question=alt.question))
        return self.explain(grade, answer)

    def explain(self, grade: Grade, answer: str) -> Grade:
        """With a model configured: the feedback rewritten as a paragraph, and with ``COACH_LLM_JUDGE`` a
        second-opinion score beside the offline one. The offline score is never changed; a failing
        endpoint leaves the offline grade as it is, with one line saying why."""
        if self.llm is None or grade.score is None:
            return grade
        from .llm import LLMUnavailable, judge, rewrite_feedback

        try:
            grade.llm_feedback = rewrite_feedback(self.llm, grade.to_json(), answer)
            if self.kb.settings.llm_judge:
                points = [p.point for p in grade.covered + grade.missing]
                grade.second_opinion = judge(self.llm, grade.question, answer, points, grade.model_answer)
        except LLMUnavailable as exc:
            grade.llm_note = feedback_text()["llm_failed"].format(reason=exc)
        return grade

    def grade_reference(self, ref: "Reference", answer: str) -> Grade:
        """Grade ``answer`` against an explicit reference (e.g. only the points a follow-up probes)."""
        answer = check_answer(answer)
        if ref.basis == "none":
            return self._unmatched(ref)
        if is_non_answer(answer):
            return self._empty(ref, answer)
        return self._grade(ref, answer)

    def reference(self, item_id: str | None = None, question: str | None = None) -> Reference:
        if item_id:
            return Reference.from_item(self.kb.catalog.get(item_id))
        question = (question or "").strip()
        if not question:
            raise InputError("Give a question (a bank item id or the question text) to grade against.")
        if len(question) > 500:
            raise InputError("The question is longer than 500 characters; shorten it.")
        return self._match_question(question)

    # ---- matching a free-text question -----------------------------------
    def _match_question(self, question: str) -> Reference:
        """The bank item or document Q&A pair that answers ``question``, by calibrated relevance.

        Nothing answering means nothing to grade against: the reference has basis "none",
        and the grade says so with the nearest questions, instead of grading against the
        points of an unrelated item.
        """
        found = self.kb.lookup(question)
        answers = [h for h in found.answers if h.kind == "bank" or h.title]
        parts = list(dict.fromkeys(i for i in map(_item_id, self.kb.parts(question, answered=bool(answers)))
                                   if i in self.kb.catalog.items))
        if len(parts) > 1 and (not answers or _item_id(answers[0]) in parts):
            return _combined(question, [Reference.from_item(self.kb.catalog.get(i)) for i in parts])
        if not answers:
            near = tuple({"source": h.source, "item_id": h.item_id, "title": h.title, "relevance": h.relevance}
                         for h in found.related(3))
            return Reference(question, (), (), "", None, "none", near)
        item = self.kb.catalog.get(_item_id(answers[0]))
        close = [_item_id(h) for h in answers[1:2] if answers[0].relevance - h.relevance <= ALTERNATIVE_GAP]
        ref = Reference.from_item(item)
        return replace(ref, alternatives=tuple(i for i in close if i in self.kb.catalog.items and i != item.id))

    # ---- grading -----------------------------------------------------------
    def _unmatched(self, ref: Reference) -> Grade:
        text = feedback_text()
        near = "、".join(f"「{s['title']}」" for s in ref.sources if s.get("title"))
        feedback = [text["unmatched"]] + ([text["unmatched_near"].format(near=near)] if near else [])
        return Grade(None, text["unmatched_verdict"], None, ref.question, "none",
                     feedback=feedback, sources=list(ref.sources), flags=["unmatched"])

    def _empty(self, ref: Reference, answer: str = "") -> Grade:
        """No score: a blank answer is "未作答"; "不知道" or "跳过" is the candidate choosing to skip."""
        text = feedback_text()
        skipped = bool(answer.strip())
        missing = [PointResult(kp.point, kp.weight, 0.0, False, None, _source_label(ref)) for kp in ref.key_points]
        return Grade(None, "跳过" if skipped else "未作答", ref.item_id, ref.question, ref.basis, missing=missing,
                     feedback=[text["skipped" if skipped else "empty"]],
                     model_answer=ref.model_answer, sources=list(ref.sources), flags=["empty"])

    def analyse(self, ref: Reference, answer: str) -> "Analysis":
        """Everything the score is made from: point coverage, misconceptions, flags and signals.

        Sentences that state a misconception earn no coverage and do not count as content:
        the rest of the answer is read without them, then each misconception costs its points.
        """
        sentences = split_sentences(answer) or [answer]
        vectors, whole = self._embed_with_reference(ref, sentences, answer[:400])
        found = self._misconceptions(ref, sentences, vectors)
        if found:
            wrong = {m.sentence for m in found}
            kept = [i for i, s in enumerate(sentences) if s not in wrong]
            if kept:
                sentences, vectors = [sentences[i] for i in kept], vectors[kept]
                answer = "".join(sentences)
                whole = self._embed([answer[:400]])[0]
        relevant = self._relevant(ref, sentences, vectors)
        results = self._cover_points(ref, answer, sentences, vectors)
        flags = self._flags(ref, answer, sentences, relevant, results)
        return Analysis(results, found, flags, self._signals(ref, answer, vectors, results, flags, whole))

    def _embed_with_reference(self, ref: Reference, sentences: list[str], whole: str):
        """The answer's sentences and its opening (``whole``), embedded in one call together with
        whichever of the reference's fixed texts are not cached yet (an item's first grading
        otherwise made four calls, and one batched call costs about half as much a text)."""
        fixed = {("anchor", ref.question, ref.model_answer[:400]): [ref.question, ref.model_answer[:400]],
                 ("question", ref.question): [ref.question],
                 ("points", *(kp.point for kp in ref.key_points)): [kp.point for kp in ref.key_points]}
        if ref.misconceptions:
            fixed[("claims", *(m.claim for m in ref.misconceptions))] = [m.claim for m in ref.misconceptions]
        todo = {key: texts for key, texts in fixed.items() if key not in self._vectors and texts}
        texts = [*sentences, whole, *(text for group in todo.values() for text in group)]
        vectors = self._embed(texts)
        start = len(sentences) + 1
        for key, group in todo.items():
            self._vectors.setdefault(key, vectors[start:start + len(group)])
            start += len(group)
        return vectors[:len(sentences)], vectors[len(sentences)]

    def _grade(self, ref: Reference, answer: str) -> Grade:
        results, found, flags, signals = self.analyse(ref, answer)
        item = self.kb.catalog.items.get(ref.item_id) if ref.item_id else None
        score = self._score(signals, found, flags, whole_item=item is not None and item.key_points == ref.key_points)
        return Grade(
            score=score, verdict=verdict_for(score), item_id=ref.item_id, question=ref.question, basis=ref.basis,
            covered=[r for r in results if r.covered], missing=[r for r in results if not r.covered],
            misconceptions=found, feedback=_feedback(ref, results, found, flags, score),
            model_answer=ref.model_answer, sources=list(ref.sources), flags=list(flags), flag_evidence=dict(flags),
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
            opposite = [i for i, s in enumerate(sentences) if _opposes(s, kp, glossary)]
            if opposite:  # "LSTM没有遗忘门" does not make the forget-gate point, however close its words
                sims[opposite, j] = 0.0
                text = " ".join(s for i, s in enumerate(sentences) if i not in opposite)
                hits = [any(glossary.mentions(t, text) for t in group) for group in kp.terms]
            else:
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
        """Misconceptions the answer states as true: the claim's words, its meaning and its polarity.

        A claim is raised by the shortest clause run that names every signal group, when that
        run is close to the claim in meaning and negated exactly when the claim is; a swap by a
        clause that names its groups in order ("two-stage ... 更快"), not negated. Besides the
        item's own, the misconceptions of its neighbours (same topic, follow-ups) are read too:
        "γ和β是人工设置的超参数" is as wrong in an answer about BN's purpose as in one about γ and β.
        """
        glossary, found = self.kb.bank.glossary, []
        candidates = list(ref.misconceptions) + (self._neighbours(ref) if NEIGHBOUR_MISCONCEPTIONS else [])
        if not candidates:
            return found
        claims_vecs = self._cached(("claims", *(m.claim for m in candidates)),
                                   lambda: self._embed([m.claim for m in candidates]))
        sims = vectors @ claims_vecs.T
        text = normalize("".join(sentences))
        used: set[int] = set()  # one sentence costs at most one misconception (a claim and a swap may overlap)
        for j, m in enumerate(candidates):
            if not _may_name(m, text, glossary):
                continue
            for i, sentence in enumerate(sentences):
                if i not in used and _states(m, sentence, float(sims[i, j]), glossary):
                    found.append(FoundMisconception(m.claim, m.correction, sentence))
                    used.add(i)
                    break
        return found

    def _neighbours(self, ref: Reference) -> list[Misconception]:
        """The misconceptions of an item's neighbours that its own reference never states."""
        bank = self.kb.bank
        item = bank.items.get(ref.item_id or "")
        if ref.basis != "bank" or item is None:
            return []
        key = ("neighbours", item.id)
        if key not in self._neighbour_cache:
            ids = {i.id for i in bank.by_topic(item.topic)} | set(item.follow_ups)
            ids |= {i.id for i in bank.items.values() if item.id in i.follow_ups}
            own = {m.claim for m in item.misconceptions}
            theirs = [m for i in sorted(ids - {item.id}) if i in bank.items
                      for m in bank.items[i].misconceptions if m.claim not in own]
            texts = split_sentences(item.answer) + [kp.point for kp in item.key_points]
            vecs, cvecs = self._embed(texts), self._embed([m.claim for m in theirs]) if theirs else None
            self._neighbour_cache[key] = [m for j, m in enumerate(theirs)  # what the reference says is not wrong here
                                          if m.kind != "swap" and not any(_states(m, t, float(vecs[i] @ cvecs[j]), bank.glossary)
                                                     for i, t in enumerate(texts))]
        return self._neighbour_cache[key]

    def _relevant(self, ref: Reference, sentences, vectors) -> list[bool]:
        """Which sentences are about the question (True), unclear (None), or clearly not (False).

        A sentence is about the question when it is close in meaning to the question, the
        model answer or any key point, or names a concept the reference names.
        """
        anchor = self._cached(("anchor", ref.question, ref.model_answer[:400]),
                              lambda: self._embed([ref.question, ref.model_answer[:400]]))
        points = self._points(ref)
        glossary = self.kb.bank.glossary
        ref_concepts = self._ref_concepts(ref)
        out = []
        for sentence, v in zip(sentences, vectors):
            floor = SEM_LOW_EN if _mostly_english(sentence) else SEM_LOW
            best = max([float(v @ anchor[0]), float(v @ anchor[1]), *(float(v @ p) for p in points)])
            named = bool(ref_concepts & set(glossary.concepts_in(sentence)))
            out.append(True if best >= floor or named else (None if best >= PADDING_FLOOR else False))
        return out

    def _ref_concepts(self, ref: Reference) -> set[str]:
        key = ("concepts", ref.question, ref.model_answer[:200])
        if key not in self._concepts:
            text = " ".join([ref.question, ref.model_answer, *(kp.point for kp in ref.key_points)])
            self._concepts[key] = set(self.kb.bank.glossary.concepts_in(text))
        return self._concepts[key]

    def _flags(self, ref: Reference, answer: str, sentences, relevant, results) -> dict[str, str]:
        """Flags, each raised only when true; ``flag_evidence`` keeps the sentence behind it."""
        flags: dict[str, str] = {}
        unrelated = self._padding(sentences, relevant)
        if not any(r is True for r in relevant) and max((r.coverage for r in results), default=0) < COVERED:
            flags["off_topic"] = sentences[0]
        elif unrelated and any(r is True for r in relevant):
            flags["padded"] = unrelated[0]
        if _is_keyword_list(answer):
            flags["keyword_only"] = answer.strip()[:200]
        if _restates(ref.question, answer):
            flags["repeat"] = answer.strip()[:200]
        return flags

    def _padding(self, sentences: list[str], relevant: list[bool]) -> list[str]:
        """Sentences about something else: naming no domain term, unrelated to the question, and to
        the answer's own relevant sentences ("3）对初始化不那么敏感。" in a list is a terse item)."""
        glossary = self.kb.bank.glossary
        candidates = [i for i, ok in enumerate(relevant) if ok is not True and meaningful_length(sentences[i]) >= 10
                      and not glossary.concepts_in(sentences[i]) and not named_terms(sentences[i])]
        on_topic = [i for i, ok in enumerate(relevant) if ok]
        if not candidates or not on_topic:
            return []
        vectors = self._embed([sentences[i] for i in candidates + on_topic])
        near = vectors[: len(candidates)] @ vectors[len(candidates):].T
        return [sentences[i] for i, row in zip(candidates, near) if float(row.max()) < PADDING_SIM]

    def _signals(self, ref, answer, vectors, results, flags, whole: np.ndarray) -> dict[str, float]:
        """The interpretable signals the score model reads (``scoring.FEATURES``); ``whole`` is the
        vector of the answer's first 400 characters."""
        total = sum(r.weight for r in results) or 1
        anchor = self._cached(("anchor", ref.question, ref.model_answer[:400]),
                              lambda: self._embed([ref.question, ref.model_answer[:400]]))
        return {
            "points": 10 * sum(r.weight * _credit(r.coverage) for r in results) / total,
            "covw": sum(r.weight * r.coverage for r in results) / total,
            "ref_cos": float(whole @ anchor[1]), "q_cos": float(whole @ anchor[0]),
            "best_sent_ref": float(np.max(vectors @ anchor[1])),
            "fit_margin": self._fit_margin(ref, whole),
            "loglen": float(np.log1p(meaningful_length(answer))),
            "keyword_only": float("keyword_only" in flags), "repeat": float("repeat" in flags),
            "off_topic": float("off_topic" in flags), "english": float(_mostly_english(answer)),
        }

    def _fit_margin(self, ref: Reference, whole: np.ndarray) -> float:
        """How much better the answer fits its own question than the best other bank question."""
        ids = list(self.kb.bank.items)
        questions = self._cached(("bank-questions", len(ids)),
                                 lambda: self.kb.bank_question_vectors(ids))
        own = float(whole @ self._cached(("question", ref.question), lambda: self._embed([ref.question]))[0])
        sims = questions @ whole
        others = [float(v) for i, v in zip(ids, sims) if i != ref.item_id]
        return own - max(others, default=0.0)

    def _score(self, signals: dict[str, float], found, flags, whole_item: bool = True) -> float:
        """The model's score for a whole item (else the weighted point credit), then the rules.

        A follow-up probe grades against one point; the model learned whole questions, so a
        probe keeps the point credit.
        """
        from .scoring import RULES, default_model

        model = self.model if self.model is not None else default_model()
        use_model = model is not None and model != RULES and whole_item
        score = model.score(signals) if use_model else signals["points"]
        if "off_topic" in flags:
            score = min(score, OFF_TOPIC_CAP)
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


def self_triggered(embedder, bank) -> list[str]:
    """Items whose own reference answer or correction would raise one of their misconceptions."""
    problems = []
    for item in bank.items.values():
        if not item.misconceptions:
            continue
        texts = [("answer", s) for s in split_sentences(item.answer)]
        texts += [("correction", s) for m in item.misconceptions for s in split_sentences(m.correction)]
        vectors = embedder.embed_queries([t for _, t in texts])
        claims_vecs = embedder.embed_queries([m.claim for m in item.misconceptions])
        sims = vectors @ claims_vecs.T
        for j, m in enumerate(item.misconceptions):
            for i, (where, text) in enumerate(texts):
                if _states(m, text, float(sims[i, j]), bank.glossary):
                    problems.append(f"{item.file}: {item.id}: its {where} \"{text[:40]}\" raises its own misconception "
                                    f"\"{m.claim[:30]}\"; narrow the signals or reword")
                    break
    return problems


def probe_problems(embedder, bank, rows: list[dict]) -> list[str]:
    """Sentences written to test the misconceptions (``corpus/eval/misconceptions/probes.jsonl``):
    each ``fire`` row must raise its claim (or any of the item's, without ``claim``), each ``quiet``
    row none. A change to the claim reader or a signal that breaks one is reported here."""
    rows = [r for r in rows if r["item_id"] in bank.items and bank.items[r["item_id"]].misconceptions]
    texts = [split_sentences(r["text"]) or [r["text"]] for r in rows]
    flat = [t for ts in texts for t in ts]
    vectors = embedder.embed_queries(flat) if flat else np.zeros((0, 1))
    claims_of = {i: embedder.embed_queries([m.claim for m in bank.items[i].misconceptions])
                 for i in {r["item_id"] for r in rows}}
    problems, at = [], 0
    for row, sentences in zip(rows, texts):
        item, vecs = bank.items[row["item_id"]], vectors[at:at + len(sentences)]
        at += len(sentences)
        sims = vecs @ claims_of[item.id].T
        raised = [m.claim for j, m in enumerate(item.misconceptions)
                  if any(_states(m, s, float(sims[i, j]), bank.glossary) for i, s in enumerate(sentences))]
        if row["expect"] == "fire" and not (row.get("claim") in raised if row.get("claim") else raised):
            problems.append(f"{item.file}: {item.id}: \"{row['text'][:40]}\" should raise "
                            f"\"{(row.get('claim') or 'a misconception')[:30]}\" and does not; widen the signals")
        elif row["expect"] == "quiet" and raised:
            problems.append(f"{item.file}: {item.id}: the correct \"{row['text'][:40]}\" raises \"{raised[0][:30]}\"; "
                            "narrow the signals")
    return problems


def _opposes(sentence: str, kp: KeyPoint, glossary) -> bool:
    """The sentence denies outright a term that the point affirms ("LSTM没有遗忘门")."""
    if claims.polarity(kp.point):
        return False  # a point that itself denies something is left to the meaning signal
    return bool(claims.negated_terms(sentence, kp.terms, glossary))


def _may_name(m: Misconception, text: str, glossary) -> bool:
    """A cheap first look: does the answer name every signal group at all?"""
    return all(claims._find(group, text, glossary) is not None for group in m.signals)


def _states(m: Misconception, sentence: str, similarity: float, glossary) -> bool:
    """Does ``sentence`` state misconception ``m`` as true? (See ``claims``.)"""
    if m.kind == "swap":
        clause = claims.in_order(sentence, m.signals, glossary)
        return clause is not None and claims.polarity(clause) == claims.polarity(m.claim)
    stated = claims.stated_polarity(sentence, m.signals, glossary)
    if stated is None or similarity < MISCONCEPTION_SIM:
        return False
    # the claim's own polarity is read the same way, on the clauses that name its signals
    own = claims.stated_polarity(m.claim, m.signals, glossary)
    wanted = claims.polarity(m.claim) if own is None else own
    # an affirmed claim is not raised when another clause about its terms is a denial ("AUC综合了所有阈值，
    # 与阈值无关"): a false flag costs the candidate 2 points, a missed one only a line of feedback
    denied_nearby = any(claims.polarity(c) for c in claims.clauses(sentence)
                        if claims.named_terms(c, m.signals, glossary))
    return stated == wanted and (wanted or not denied_nearby)


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


def _combined(question: str, refs: list[Reference]) -> Reference:
    """One reference for a question that asks several things; each part is graded on its own."""
    answer = "\n\n".join(f"【{r.question}】\n{r.model_answer}" for r in refs)
    return Reference(question, tuple(kp for r in refs for kp in r.key_points),
                     tuple(m for r in refs for m in r.misconceptions), answer, refs[0].item_id, refs[0].basis,
                     tuple(s for r in refs for s in r.sources), parts=tuple(refs))


def _joined(ref: Reference, grades: list[Grade]) -> Grade:
    """The grade of a question that asks several things: the mean of its parts' scores.

    An answer that treats one part well and skips the other earns about half, as an
    interviewer would give; flags hold only when they hold for every part (a sentence that
    is off-topic for one part is the answer to the other).
    """
    scored = [g for g in grades if g.score is not None]
    if not scored:
        return replace(grades[0], question=ref.question, sources=list(ref.sources), model_answer=ref.model_answer)
    score = round(float(np.mean([g.score for g in scored])), 1)
    flags = [f for f in scored[0].flags if all(f in g.flags for g in scored)]
    feedback = [feedback_text()["composite"].format(parts="」「".join(r.question for r in ref.parts))]
    for part, g in zip(ref.parts, grades):
        feedback += [f"「{part.question}」 {g.score if g.score is not None else '-'}/10："] + g.feedback
    return Grade(score=score, verdict=verdict_for(score), item_id=ref.item_id, question=ref.question, basis=ref.basis,
                 covered=[c for g in scored for c in g.covered], missing=[m for g in scored for m in g.missing],
                 misconceptions=[m for g in scored for m in g.misconceptions], feedback=feedback,
                 model_answer=ref.model_answer, sources=list(ref.sources), flags=flags,
                 flag_evidence={f: scored[0].flag_evidence[f] for f in flags if f in scored[0].flag_evidence})


def _item_id(hit) -> str:
    """The catalog id of a hit: its bank item, or its document Q&A pair."""
    from .documents import doc_item_id

    return hit.item_id if hit.kind == "bank" else doc_item_id(hit.source, hit.title)


def _source_label(ref: Reference) -> str:
    if ref.basis == "document":
        return ref.sources[0]["source"]
    if ref.item_id:
        return f"bank:{ref.item_id}"
    return ", ".join(dict.fromkeys(str(s["source"]) for s in ref.sources)) or "-"


def _feedback(ref: Reference, results, found, flags, score: float) -> list[str]:
    text = feedback_text()
    out = []
    if ref.basis == "document":
        out.append(text["document_basis"].format(source=_source_label(ref)))
    for flag in ("off_topic", "repeat", "keyword_only", "padded"):
        if flag in flags:
            line = text[flag]
            if flag == "padded":  # say which sentence, so the candidate can check the claim
                line += text["evidence"].format(sentence=flags[flag][:60])
            out.append(line)
    out += [text["misconception"].format(correction=m.correction) for m in found]
    missing = sorted((r for r in results if not r.covered), key=lambda r: -r.weight)
    out += [text["missing"].format(point=r.point) for r in missing[:3]]
    if not missing and not found:
        out.append(text["strong"] if score >= 8.5 else text["all_covered"])
    return out
