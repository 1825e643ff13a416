"""Mock interview engine: ask, grade, follow up, remember, plan the review.

A session is a loop of ``current`` question -> ``answer(text)`` -> graded
``TurnResult`` with the next question, until ``finished``; ``report()`` sums
it up. The engine has no terminal or web code: the CLI and the web app drive
the same object.

How questions are chosen:

- At the start a *plan* is fixed and stored with the session: the items due
  for review in the chosen topics (most overdue first), then the items never
  seen, then the rest, the latter two in an order shuffled by the session's
  seed (derived from its id unless given), so the same seed and history give
  the same session. Due items fill at most half of the questions (all of them
  in a review session); the rest are chosen by difficulty first (the current
  level, else the nearest one that has an unasked item), new before seen
  within a level.
- Adaptive difficulty starts at 2; a main answer scoring >= 8 moves up one
  level, < 5 moves down. The level is recomputed from the stored scores, so a
  resumed session continues at the right level. Reviews ignore the level: a
  due question comes back as it is.
- After a main answer that said something but scored below 7 and missed key
  points, ONE follow-up is asked: an unasked bank item listed in the item's
  ``follow_ups`` (same topic first), else a probe about the most important
  missed point, graded against that point alone. Follow-ups do not count
  toward the number of questions. No item is asked twice in a session.
- Every graded answer goes to ``History`` in one transaction with the item's
  FSRS review and the next question, so a crash loses nothing graded and
  ``resume`` asks the pending question again.

Compromises: the plan is a snapshot, so an item that falls due during a
session waits for the next one; a probe is graded on the one point it asks
about, which is fair to the candidate but means a probe answer that also
covers other missed points earns no extra credit; probes do not move the
item's FSRS card (the main answer already reviewed it this session). The time
limit is recorded, not enforced: a late answer is graded and marked
``timed_out``, because a terminal cannot take back a line being typed.
"""

from __future__ import annotations

import hashlib
import random
import re
import secrets
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import yaml

from .bank import Bank, BankItem, KeyPoint
from .config import RESOURCES
from .errors import CoachError, InputError
from .grade import Grade, Reference
from .history import GradedAnswer, History, NewTurn, SessionRecord, TurnRecord, utcnow

ADAPTIVE = "adaptive"
START_LEVEL, UP_AT, DOWN_BELOW = 2, 8.0, 5.0
FOLLOW_UP_BELOW = 7.0
MAX_QUESTIONS = 50
WEAKEST_SHOWN = 5
SESSION_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")


@lru_cache(maxsize=1)
def interview_text() -> dict:
    return yaml.safe_load((RESOURCES / "interview.yaml").read_text(encoding="utf-8"))


# ---- configuration and questions ---------------------------------------------------
@dataclass(frozen=True)
class InterviewConfig:
    topics: tuple[str, ...] = ()  # empty: every topic
    difficulty: int | str = ADAPTIVE  # 1, 2, 3 or "adaptive"
    questions: int = 5  # main questions; follow-ups come on top
    time_limit: float | None = None  # seconds per answer
    review_only: bool = False  # ask only the items that are due

    def checked(self, bank: Bank) -> "InterviewConfig":
        """This config with its values normalised, or a CoachError saying what to fix."""
        from .documents import expand_topics

        from .limits import MAX_TIME_LIMIT_S, check_ids, check_number

        topics = expand_topics(tuple(check_ids(self.topics)), bank.topics)
        if self.topics and not topics:
            raise CoachError("No documents with questions are in the knowledge base yet; upload a Q&A page first.")
        unknown = [t for t in topics if t not in bank.topics]
        if unknown:
            raise CoachError(f"Unknown topic {', '.join(map(repr, unknown))}; "
                             f"valid topic ids are: {', '.join(bank.topics)}.")
        difficulty = self.difficulty if self.difficulty == ADAPTIVE else _int(self.difficulty)
        if difficulty not in (1, 2, 3, ADAPTIVE):
            raise InputError(f"Difficulty must be 1, 2, 3 or {ADAPTIVE}, not {str(self.difficulty)[:20]!r}.")
        questions = check_number(self.questions, "The number of questions", 1, MAX_QUESTIONS, 5)
        if questions != int(questions):
            raise InputError(f"Ask between 1 and {MAX_QUESTIONS} questions, a whole number.")
        limit = check_number(self.time_limit, "The time limit (seconds)", 0, MAX_TIME_LIMIT_S)
        return replace(self, topics=topics, difficulty=difficulty, questions=int(questions),
                       time_limit=limit or None)

    def to_json(self) -> dict:
        return {**asdict(self), "topics": list(self.topics)}

    @classmethod
    def from_json(cls, data: dict) -> "InterviewConfig":
        return cls(tuple(data.get("topics", ())), data.get("difficulty", ADAPTIVE), data.get("questions", 5),
                   data.get("time_limit"), bool(data.get("review_only", False)))


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Question:
    """The question being asked."""

    seq: int
    kind: str  # "question", "follow_up" or "probe"
    item_id: str
    text: str
    topic: str
    difficulty: int
    asked_at: datetime
    time_limit: float | None = None
    point: str | None = None  # the missed key point a probe asks about

    @property
    def is_follow_up(self) -> bool:
        return self.kind != "question"

    @property
    def deadline(self) -> datetime | None:
        return self.asked_at + timedelta(seconds=self.time_limit) if self.time_limit else None

    @classmethod
    def from_turn(cls, turn: TurnRecord, time_limit: float | None) -> "Question":
        return cls(turn.seq, turn.kind, turn.item_id, turn.question, turn.topic, turn.difficulty, turn.asked_at,
                   time_limit, turn.point)


@dataclass
class TurnResult:
    question: Question
    grade: Grade
    score: float  # 0.0 for an empty answer or a skip
    elapsed: float
    timed_out: bool
    next: Question | None

    @property
    def follow_up(self) -> bool:
        """Whether the next question is a follow-up to this one."""
        return self.next is not None and self.next.is_follow_up

    @property
    def skipped(self) -> bool:
        return self.grade.score is None

    @property
    def finished(self) -> bool:
        return self.next is None


# ---- choosing questions ---------------------------------------------------------------
def next_level(level: int, score: float) -> int:
    if score >= UP_AT:
        return min(3, level + 1)
    if score < DOWN_BELOW:
        return max(1, level - 1)
    return level


def level_after(scores: list[float], difficulty: int | str) -> int:
    """The difficulty to ask at after these main-question scores."""
    if difficulty != ADAPTIVE:
        return int(difficulty)
    level = START_LEVEL
    for score in scores:
        level = next_level(level, score)
    return level


class DueItem(NamedTuple):
    item: BankItem
    due: datetime


def due_items(history: History, bank: Bank, topics=(), now: datetime | None = None) -> list[DueItem]:
    """Bank items in ``topics`` (all when empty) whose review is due at ``now``, most overdue first."""
    return [DueItem(bank.items[c.item_id], c.due) for c in history.due_cards(now)
            if c.item_id in bank.items and (not topics or bank.items[c.item_id].topic in topics)]


def make_plan(bank: Bank, history: History, config: InterviewConfig, seed: int, now: datetime) -> dict:
    """Candidate item ids in the order they are considered; stored with the session."""
    due = [d.item.id for d in due_items(history, bank, config.topics, now)]
    if config.review_only:
        return {"due": due, "new": [], "other": []}
    pool = sorted(i.id for i in bank.items.values() if not config.topics or i.topic in config.topics)
    random.Random(seed).shuffle(pool)
    seen = set(history.cards())
    # "other" keeps the due items too: once the review quota is used they are ordinary seen items
    return {"due": due, "new": [i for i in pool if i not in seen], "other": [i for i in pool if i in seen]}


def pick_item(plan: dict, bank: Bank, asked: set[str], level: int, due_left: int) -> str | None:
    """The next main question: a due item while the quota lasts, else the closest difficulty, new first."""
    if due_left > 0:
        for item_id in plan["due"]:
            if item_id not in asked and item_id in bank.items:
                return item_id
    ranked = [(abs(bank.items[i].difficulty - level), rank, order, i)
              for rank, name in enumerate(("new", "other")) for order, i in enumerate(plan[name])
              if i not in asked and i in bank.items]
    return min(ranked)[-1] if ranked else None


def choose_follow_up(item: BankItem, grade: Grade, bank: Bank, asked: set[str]) -> NewTurn | None:
    """One follow-up after a thin but real answer, or None."""
    if grade.score is None or grade.score >= FOLLOW_UP_BELOW or not grade.missing:
        return None
    options = [bank.items[f] for f in item.follow_ups if f in bank.items and f not in asked]
    if options:
        chosen = sorted(options, key=lambda o: o.topic != item.topic)[0]  # stable: the author's order otherwise
        return NewTurn("follow_up", chosen.id, chosen.topic, chosen.difficulty, chosen.question)
    point = max(grade.missing, key=lambda r: r.weight)  # the first of the heaviest, in the item's order
    text = interview_text()["probe"].format(point=point.point)
    return NewTurn("probe", item.id, item.topic, item.difficulty, text, point=point.point)


def probe_reference(item: BankItem, point: str) -> Reference:
    """What a probe is graded against: only the missed point (plus the item's misconceptions).

    The question stays the item's: the probe's own text quotes the point, so a good answer would look
    like a restatement of it to the grader's repeat guard.
    """
    key = next((kp for kp in item.key_points if kp.point == point), None) or KeyPoint(point, ((point,),), 1)
    source = {"source": "bank", "item_id": item.id, "title": item.question, "file": item.file}
    # item_id stays None: the grader caches point vectors by item id, and this is a subset of the item's points
    return Reference(item.question, (key,), item.misconceptions, item.answer, None, "bank", (source,))


def new_session_id(now: datetime) -> str:
    return f"{now.astimezone():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def seed_for(session_id: str) -> int:
    return int.from_bytes(hashlib.sha256(session_id.encode()).digest()[:8], "big")


# ---- the session ------------------------------------------------------------------------
class InterviewSession:
    """One mock interview, persisted turn by turn in ``History``."""

    def __init__(self, kb, grader, history: History, record: SessionRecord):
        self.kb, self.grader, self.history = kb, grader, history
        self.id = record.id
        self.config = InterviewConfig.from_json(record.config)
        self.seed = record.config.get("seed")
        self.plan = record.plan
        self._refresh()

    @classmethod
    def start(cls, kb, grader, history: History, config: InterviewConfig, seed: int | None = None,
              now: datetime | None = None) -> "InterviewSession":
        now = now or utcnow()
        config = config.checked(kb.catalog)
        session_id = new_session_id(now)
        seed = seed_for(session_id) if seed is None else int(seed)
        plan = make_plan(kb.catalog, history, config, seed, now)
        first = _main_turn(kb.catalog, plan, config, asked=set(), scores=[], due_used=0)
        if first is None:
            raise CoachError(interview_text()["cli"]["nothing_due"] if config.review_only else
                             "The chosen topics have no questions yet; pick other topics or add items to the bank.")
        history.create_session(session_id, {**config.to_json(), "seed": seed}, plan, first, now)
        return cls(kb, grader, history, history.session(session_id))

    @classmethod
    def resume(cls, kb, grader, history: History, session_id: str, now: datetime | None = None) -> "InterviewSession":
        """Continue an unfinished session: the question asked but not answered is asked again."""
        record = history.session(session_id)
        if record is None:
            raise CoachError(f"No interview session has the id {session_id!r}; `coach history` lists them.")
        if record.status != "active":
            raise CoachError(f"Session {session_id} is already over; start a new one with `coach interview`.")
        session = cls(kb, grader, history, record)
        session._reopen(now or utcnow())
        return session

    # ---- state ----------------------------------------------------------------------
    def _refresh(self) -> None:
        self._all = self.history.turns(self.id)
        self._status = self.history.session(self.id).status

    def _reopen(self, now: datetime) -> None:
        pending = self._pending()
        if pending is not None:
            self.history.reask(self.id, pending.seq, now)
        else:  # only if the file was edited by hand: start and answer always leave one pending turn
            turn = self._next_main(extra_scores=[])
            if turn is None:
                self.history.stop_session(self.id, now)
            else:
                self.history.ask(self.id, turn, now)
        self._refresh()

    def _pending(self) -> TurnRecord | None:
        return next((t for t in self._all if not t.answered), None)

    @property
    def turns(self) -> list[TurnRecord]:
        """The answered turns, follow-ups included, in order."""
        return [t for t in self._all if t.answered]

    @property
    def finished(self) -> bool:
        return self._status != "active"

    @property
    def current(self) -> Question | None:
        pending = None if self.finished else self._pending()
        return Question.from_turn(pending, self.config.time_limit) if pending else None

    @property
    def level(self) -> int:
        return level_after([t.score for t in self.turns if t.kind == "question"], self.config.difficulty)

    # ---- answering --------------------------------------------------------------------
    def answer(self, text: str | None, elapsed: float | None = None, now: datetime | None = None) -> TurnResult:
        """Grade ``text`` for the current question, store it, and move to the next question."""
        question = self.current
        if question is None:
            raise CoachError("This interview session is over; start a new one with `coach interview`.")
        now = now or utcnow()
        grade = self._grade(question, text or "")
        score = 0.0 if grade.score is None else float(grade.score)
        if elapsed is None:
            elapsed = max(0.0, (now - question.asked_at).total_seconds())
        timed_out = bool(self.config.time_limit and elapsed > self.config.time_limit)
        graded = GradedAnswer((text or "").strip(), score, grade.verdict, grade.to_json(), round(float(elapsed), 1),
                              timed_out, review=question.kind != "probe")
        self.history.record_answer(self.id, question.seq, graded, self._next_turn(question, grade, score, text or ""),
                                   now)
        self._refresh()
        return TurnResult(question, grade, score, float(elapsed), timed_out, self.current)

    def stop(self, now: datetime | None = None) -> None:
        """End the session early (the candidate left); every graded answer is kept."""
        if not self.finished:
            # only a pending follow-up left: every question was answered, so the session counts as finished
            done = sum(t.kind == "question" for t in self.turns) >= self.config.questions
            self.history.stop_session(self.id, now or utcnow(), "finished" if done else "stopped")
            self._refresh()

    def report(self) -> "InterviewReport":
        names = {t.id: t.zh for t in self.kb.catalog.topics.values()}
        return InterviewReport.build(self.history, self.id, names)

    def _grade(self, question: Question, text: str) -> Grade:
        item = self.kb.catalog.get(question.item_id)
        if question.kind != "probe":
            return self.grader.grade(text, item_id=item.id)
        grade = self.grader.grade_reference(probe_reference(item, question.point), text)
        grade.item_id = item.id
        for result in grade.covered + grade.missing:
            result.source = f"bank:{item.id}"  # the reference had no item id (see probe_reference)
        return self.grader.explain(grade, text)

    def _next_turn(self, question: Question, grade: Grade, score: float, text: str = "") -> NewTurn | None:
        if question.kind == "question":
            asked = {t.item_id for t in self._all}
            item = self.kb.catalog.get(question.item_id)
            follow_up = choose_follow_up(item, grade, self.kb.catalog, asked)
            if follow_up is not None and self.grader.llm is not None:
                follow_up = self._worded_probe(item, grade, text) or follow_up
            if follow_up is not None:
                return follow_up
        return self._next_main(extra_scores=[score] if question.kind == "question" else [])

    def _worded_probe(self, item: BankItem, grade: Grade, text: str) -> NewTurn | None:
        """With a model: a probe of the heaviest missed point, worded from the candidate's own answer
        ("你说复杂度是O(n), QKᵀ的形状是什么?"). It is graded against that point, as the offline probe is;
        if the endpoint fails, the offline follow-up is asked instead."""
        from .llm import LLMUnavailable, write_follow_up

        point = max(grade.missing, key=lambda r: r.weight)
        try:
            worded = write_follow_up(self.grader.llm, item.question, text, point.point)
        except LLMUnavailable:
            return None
        return NewTurn("probe", item.id, item.topic, item.difficulty, worded, point=point.point)

    def _next_main(self, extra_scores: list[float]) -> NewTurn | None:
        main = [t for t in self._all if t.kind == "question"]
        if len(main) >= self.config.questions:
            return None
        scores = [t.score for t in main if t.answered] + extra_scores
        due_used = sum(t.item_id in self.plan["due"] for t in main)
        return _main_turn(self.kb.catalog, self.plan, self.config, {t.item_id for t in self._all}, scores, due_used)


def _main_turn(bank: Bank, plan: dict, config: InterviewConfig, asked: set[str], scores: list[float],
               due_used: int) -> NewTurn | None:
    quota = config.questions if config.review_only else config.questions // 2
    item_id = pick_item(plan, bank, asked, level_after(scores, config.difficulty), quota - due_used)
    if item_id is None:
        return None
    item = bank.items[item_id]
    return NewTurn("question", item.id, item.topic, item.difficulty, item.question)


# ---- the report ---------------------------------------------------------------------------
@dataclass(frozen=True)
class WeakPoint:
    point: str
    weight: int
    count: int  # how many answers missed it
    sources: tuple[str, ...]


@dataclass(frozen=True)
class ReviewEntry:
    item_id: str
    question: str
    due: datetime
    last_score: float | None


@dataclass
class InterviewReport:
    session_id: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    config: dict
    turns: list[TurnRecord]  # answered turns only
    review: list[ReviewEntry]  # this session's items, soonest due first
    topic_names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, history: History, session_id: str, topic_names: dict[str, str] | None = None) -> "InterviewReport":
        record = history.session(session_id)
        if record is None:
            raise CoachError(f"No interview session has the id {session_id!r}; `coach history` lists them.")
        turns = [t for t in history.turns(session_id) if t.answered]
        questions = {t.item_id: t.question for t in turns if t.kind != "probe"}
        cards = history.cards(list(questions))
        review = sorted((ReviewEntry(i, questions[i], c.due, c.last_score) for i, c in cards.items()),
                        key=lambda r: (r.due, r.item_id))
        return cls(record.id, record.started_at, record.finished_at, record.status, record.config, turns, review,
                   topic_names or {})

    # ---- figures ----------------------------------------------------------------------
    @property
    def overall(self) -> float | None:
        """Mean score over every answered turn, follow-ups included."""
        return _mean([t.score for t in self.turns])

    @property
    def questions(self) -> int:
        return sum(t.kind == "question" for t in self.turns)

    @property
    def timed_out(self) -> list[TurnRecord]:
        return [t for t in self.turns if t.timed_out]

    def topic_scores(self) -> dict[str, tuple[float, int]]:
        """``{topic: (mean score, answers)}`` in order of first appearance."""
        by_topic: dict[str, list[float]] = {}
        for turn in self.turns:
            by_topic.setdefault(turn.topic, []).append(turn.score)
        return {t: (_mean(s), len(s)) for t, s in by_topic.items()}

    def weakest_points(self, limit: int = WEAKEST_SHOWN) -> list[WeakPoint]:
        """Missed key points across the session: heaviest first, then most often missed."""
        seen: dict[str, dict] = {}
        for turn in self.turns:
            for missed in (turn.grade or {}).get("missing", []):
                entry = seen.setdefault(missed["point"], {"weight": missed["weight"], "count": 0, "sources": {}})
                entry["count"] += 1
                entry["sources"][missed["source"]] = None
        ranked = sorted(seen.items(), key=lambda kv: (-kv[1]["weight"], -kv[1]["count"]))  # stable: first missed first
        return [WeakPoint(p, e["weight"], e["count"], tuple(e["sources"])) for p, e in ranked[:limit]]

    def to_json(self) -> dict:
        return {
            "session_id": self.session_id, "status": self.status, "config": self.config,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "overall": self.overall, "questions": self.questions, "answers": len(self.turns),
            "topics": {t: {"name": self.topic_names.get(t, t), "mean": m, "answers": n}
                       for t, (m, n) in self.topic_scores().items()},
            "turns": [{"seq": t.seq, "kind": t.kind, "item_id": t.item_id, "topic": t.topic, "question": t.question,
                       "answer": t.answer, "score": t.score, "verdict": t.verdict, "elapsed": t.elapsed,
                       "timed_out": t.timed_out} for t in self.turns],
            "weakest_points": [asdict(w) | {"sources": list(w.sources)} for w in self.weakest_points()],
            "review": [{"item_id": r.item_id, "question": r.question, "due": r.due.isoformat(),
                        "last_score": r.last_score} for r in self.review],
        }

    # ---- Markdown ------------------------------------------------------------------------
    def to_markdown(self) -> str:
        text = interview_text()["report"]
        parts = [f"# {text['title']}", self._md_header(text), f"## {text['overall']}"]
        if not self.turns:
            parts.append(text["no_answers"])
            return "\n\n".join(parts) + "\n"
        parts += [text["overall_line"].format(score=f"{self.overall:.1f}/10"),
                  f"## {text['topics']}", self._md_topics(text), f"## {text['turns']}", self._md_turns(text),
                  f"## {text['weakest']}", self._md_weakest(text), f"## {text['review']}", self._md_review(text)]
        if self.timed_out:
            parts += [f"## {text['timed_out']}", self._md_timed_out(text)]
        return "\n\n".join(parts) + "\n"

    def _md_header(self, text: dict) -> str:
        cfg = self.config
        topics = "、".join(self.topic_names.get(t, t) for t in cfg.get("topics") or []) or text["all_topics"]
        if cfg.get("review_only"):
            topics = f"{text['review_mode']} / {topics}"
        difficulty = text["adaptive"] if cfg.get("difficulty") == ADAPTIVE else str(cfg.get("difficulty"))
        limit = ""
        if cfg.get("time_limit"):
            limit = " / " + interview_text()["labels"]["time_limit"].format(limit=f"{cfg['time_limit']:g}")
        settings = text["config_line"].format(topics=topics, difficulty=difficulty, questions=cfg.get("questions"),
                                              limit=limit)
        counts = text["counts"].format(questions=self.questions, follow_ups=len(self.turns) - self.questions,
                                       answers=len(self.turns))
        return "\n".join([
            f"- {text['session']}:`{self.session_id}`",
            f"- {text['date']}:{_local(self.started_at)}",
            f"- {text['status']}:{text['statuses'].get(self.status, self.status)}",
            f"- {text['config']}:{settings}",
            f"- {counts}",
        ])

    def _md_topics(self, text: dict) -> str:
        rows = [text["topic_table"], "| --- | --- | --- |"]
        for topic, (mean, count) in self.topic_scores().items():
            rows.append(f"| {_cell(self.topic_names.get(topic, topic))} | {mean:.1f}/10 | {count} |")
        return "\n".join(rows)

    def _md_turns(self, text: dict) -> str:
        """Each question as the candidate keeps it: the answer given, the score, the points covered and
        missed, misconceptions, and the model answer (once per question; a follow-up shows its point)."""
        blocks, n = [], 0
        for turn in self.turns:
            grade = turn.grade or {}
            n += not turn.is_follow_up
            template = text["follow_up_heading"] if turn.is_follow_up else text["turn_heading"]
            lines = [template.format(n=n, question=_inline(turn.question)), "",
                     text["score_line"].format(score=f"{turn.score:.1f}", verdict=turn.verdict or "")]
            if turn.timed_out:
                lines[-1] += text["timed_out_note"].format(elapsed=turn.elapsed,
                                                           limit=self.config.get("time_limit") or 0)
            answer = (turn.answer or "").strip()
            lines += ["", f"**{text['your_answer']}**", "", _quote(answer) if answer else f"> {text['no_answer']}"]
            covered = [p["point"] for p in grade.get("covered", [])]
            missed = [p["point"] for p in grade.get("missing", [])]
            if covered:
                lines += ["", f"**{text['covered']}**"] + [f"- ✅ {_inline(p)}" for p in covered]
            if missed:
                lines += ["", f"**{text['missed']}**"] + [f"- ❌ {_inline(p)}" for p in missed]
            wrong = grade.get("misconceptions", [])
            if wrong:
                lines += ["", f"**{text['misconceptions']}**"] + [
                    f"- {_inline(m.get('sentence', ''))} → {_inline(m.get('correction', ''))}" for m in wrong]
            model = (grade.get("model_answer") or "").strip()
            if model and turn.kind != "probe":
                lines += ["", f"**{text['model_answer']}**", "", _quote(model)]
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks)

    def _md_weakest(self, text: dict) -> str:
        questions = {t.item_id: t.question for t in self.turns if t.kind != "probe"}
        points = self.weakest_points()
        if not points:
            return text["no_weak"]
        return "\n".join(text["weak_line"].format(n=n, point=_inline(w.point), weight=w.weight, count=w.count,
                                                  sources=";".join(_source_label(s, questions) for s in w.sources))
                         for n, w in enumerate(points, 1))

    def _md_review(self, text: dict) -> str:
        if not self.review:
            return text["no_review"]
        rows = [text["review_table"], "| --- | --- | --- |"]
        for r in self.review:
            last = "-" if r.last_score is None else f"{r.last_score:.1f}/10"
            rows.append(f"| {_cell(r.question)} | {_local(r.due)}（{_in_days(r.due)}） | {last} |")
        return "\n".join(rows)

    def _md_timed_out(self, text: dict) -> str:
        return "\n".join(text["timed_out_line"].format(question=_inline(t.question), elapsed=t.elapsed,
                                                       limit=self.config.get("time_limit") or 0)
                         for t in self.timed_out)

    def file_stem(self) -> str:
        """``面试报告-2026-12-02-1430-normalization``: when it started and on what (topic ids, which are
        ours, reduced to ASCII letters, digits and dashes); never text a user typed."""
        topics = [re.sub(r"[^a-z0-9]+", "-", t.lower()).strip("-") for t in self.config.get("topics") or []]
        topics = [t for t in topics if t][:2]
        what = "复习" if self.config.get("review_only") else ("+".join(topics) or "全部主题")
        if len(self.config.get("topics") or []) > 2:
            what += "等"
        return f"面试报告-{self.started_at.astimezone():%Y-%m-%d-%H%M}-{what}"

    def save(self, folder: Path, suffix: str = ".md") -> Path:
        """Write the report (Markdown, or PDF with ``suffix=".pdf"``) under ``folder``, named by ``file_stem``
        (a second report of the same minute and topics gets "-2")."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        stem, n = self.file_stem(), 1
        path = folder / f"{stem}{suffix}"
        owner = folder / f".{stem}.session"
        while path.exists() and not (owner.exists() and owner.read_text(encoding="utf-8") == self.session_id):
            n += 1
            path, owner = folder / f"{stem}-{n}{suffix}", folder / f".{stem}-{n}.session"
        tmp = path.with_name(path.name + ".tmp")
        if suffix == ".pdf":
            from .report_pdf import markdown_to_pdf

            tmp.write_bytes(markdown_to_pdf(self.to_markdown(), title=interview_text()["report"]["title"]))
        else:
            tmp.write_text(self.to_markdown(), encoding="utf-8")
        tmp.replace(path)  # atomic: a reader never sees half a report
        owner.write_text(self.session_id, encoding="utf-8")  # the same session saves over its own report
        return path


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def _local(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def _inline(text: str) -> str:
    return " ".join(text.split())


def _quote(text: str) -> str:
    """Text as a Markdown block quote, line by line."""
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.strip().splitlines())


def _in_days(due: datetime, now: datetime | None = None) -> str:
    """"今天" / "1 天后" / "3 天后": a review date the way a candidate plans a week."""
    days = (due.astimezone().date() - (now or datetime.now(timezone.utc)).astimezone().date()).days
    return interview_text()["report"]["in_days"][0] if days <= 0 else interview_text()["report"]["in_days"][1].format(n=days)


def _cell(text: str) -> str:
    return _inline(text).replace("|", "\\|")


def _source_label(source: str, questions: dict[str, str]) -> str:
    item_id = source.removeprefix("bank:")
    if source.startswith("bank:") and item_id in questions:
        return f"《{_inline(questions[item_id])}》"
    return source.removeprefix("bank:")
