"""Interview memory: sessions, graded turns and spaced-repetition cards in one SQLite file.

Design:

- One file at ``settings.history_db``. WAL lets readers (``coach history``)
  run while a session writes; a busy timeout makes two sessions (threads or
  processes) wait for each other instead of failing; foreign keys stop a turn
  from outliving its session.
- Schema changes are numbered functions ``m001_...`` applied in order and
  recorded in ``schema_migrations`` (the simonw/llm pattern): opening an old
  file upgrades it, opening a new one creates it. Migrations run inside one
  ``BEGIN IMMEDIATE`` so two processes opening a new file do not race.
- Every write is one ``BEGIN IMMEDIATE`` transaction. Answering is a single
  transaction that stores the graded turn, reviews the item's FSRS card and
  inserts the next question (or closes the session), so after a crash the
  file holds the state before the answer or after it, never half of it. A
  session that is still active therefore always has exactly one unanswered
  turn: the question to ask when it is resumed.
- One FSRS card per bank item, scheduled without fuzzing so the same answers
  give the same due dates. Everything that schedules or asks what is due
  takes ``now``, so tests pass time in instead of sleeping.

Compromises: FSRS is driven by the grade mapped to four ratings rather than a
self-rating; a card's due date is kept in its own column next to the card JSON
so "what is due" is an indexed query (both are written by the same statement).
Timestamps are UTC ISO strings with a fixed precision so they sort as text.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from fsrs import Card, Rating, Scheduler

from .errors import CoachError

BUSY_TIMEOUT_S = 30.0
# Interview practice is spaced in days, not minutes: a missed question comes back tomorrow (FSRS's
# default learning steps of 1 and 10 minutes suit flashcards drilled in one sitting, not a question
# answered in a mock interview). Fuzzing is off so due dates are deterministic.
LEARNING_STEPS = (timedelta(days=1),)
SCHEDULER = Scheduler(learning_steps=LEARNING_STEPS, relearning_steps=LEARNING_STEPS, enable_fuzzing=False)


# ---- time and ratings ----------------------------------------------------------
def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """One fixed format for every stored time, so text comparison is time comparison."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def rating_for(score: float | None) -> Rating:
    """The FSRS rating a grade earns; an empty answer or a skip is a lapse."""
    if score is None or score < 4.5:
        return Rating.Again
    if score < 6.5:
        return Rating.Hard
    if score < 8.5:
        return Rating.Good
    return Rating.Easy


# ---- migrations ------------------------------------------------------------------
def m001_create_tables(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'finished', 'stopped')),
        config TEXT NOT NULL,   -- JSON: topics, difficulty, questions, time limit, seed
        plan TEXT NOT NULL      -- JSON: the candidate items fixed at the start
    )""")
    db.execute("""CREATE TABLE turns (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('question', 'follow_up', 'probe')),
        is_follow_up INTEGER NOT NULL,
        item_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        difficulty INTEGER NOT NULL,
        question TEXT NOT NULL,
        point TEXT,             -- the key point a probe asks about
        asked_at TEXT NOT NULL,
        answer TEXT,
        score REAL,
        verdict TEXT,
        grade TEXT,             -- JSON of coach.grade.Grade
        elapsed REAL,
        timed_out INTEGER NOT NULL DEFAULT 0,
        answered_at TEXT,
        PRIMARY KEY (session_id, seq)
    )""")
    db.execute("""CREATE TABLE review_cards (
        item_id TEXT PRIMARY KEY,
        topic TEXT NOT NULL,
        card TEXT NOT NULL,     -- fsrs.Card.to_json()
        due TEXT NOT NULL,
        last_score REAL,
        reviews INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL
    )""")


def m002_create_indexes(db: sqlite3.Connection) -> None:
    db.execute("CREATE INDEX review_cards_due ON review_cards(due)")
    db.execute("CREATE INDEX turns_topic ON turns(topic, answered_at)")
    db.execute("CREATE INDEX sessions_started ON sessions(started_at)")


def m003_api_tokens(db: sqlite3.Connection) -> None:
    """Interviews started over the API, by a hash of their secret token (the token itself is never stored)."""
    db.execute("""CREATE TABLE api_tokens (
        token_hash TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        client TEXT NOT NULL,   -- the user name, or the client's address without a login
        created_at TEXT NOT NULL,
        last_used TEXT NOT NULL
    )""")
    db.execute("CREATE INDEX api_tokens_client ON api_tokens(client, last_used)")


MIGRATIONS = [m001_create_tables, m002_create_indexes, m003_api_tokens]


# ---- records -----------------------------------------------------------------------
@dataclass(frozen=True)
class NewTurn:
    """A question about to be asked."""

    kind: str  # "question", "follow_up" (another bank item) or "probe" (a missed point)
    item_id: str
    topic: str
    difficulty: int
    question: str
    point: str | None = None


@dataclass(frozen=True)
class GradedAnswer:
    answer: str
    score: float  # 0 for an empty answer or a skip
    verdict: str
    grade: dict
    elapsed: float
    timed_out: bool
    review: bool  # whether this answer reviews the item's FSRS card (not for probes)


@dataclass(frozen=True)
class TurnRecord:
    session_id: str
    seq: int
    kind: str
    item_id: str
    topic: str
    difficulty: int
    question: str
    point: str | None
    asked_at: datetime
    answer: str | None
    score: float | None
    verdict: str | None
    grade: dict | None
    elapsed: float | None
    timed_out: bool
    answered_at: datetime | None

    @property
    def is_follow_up(self) -> bool:
        return self.kind != "question"

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "TurnRecord":
        return cls(row["session_id"], row["seq"], row["kind"], row["item_id"], row["topic"], row["difficulty"],
                   row["question"], row["point"], parse_time(row["asked_at"]), row["answer"], row["score"],
                   row["verdict"], json.loads(row["grade"]) if row["grade"] else None, row["elapsed"],
                   bool(row["timed_out"]), parse_time(row["answered_at"]))


@dataclass(frozen=True)
class SessionRecord:
    id: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    config: dict
    plan: dict


@dataclass(frozen=True)
class SessionSummary:
    id: str
    started_at: datetime
    status: str
    questions: int  # main questions answered (follow-ups not counted)
    answers: int  # every answered turn
    mean_score: float | None
    topics: list[str]
    mode: str = "interview"  # "grade": one answer graded in 答案评分, kept as practice


@dataclass(frozen=True)
class CardInfo:
    item_id: str
    topic: str
    due: datetime
    last_score: float | None
    reviews: int


@dataclass(frozen=True)
class TopicProgress:
    topic: str
    answers: int
    items: int
    mean_score: float | None
    recent_score: float | None  # mean of its answers in the latest session (interview or practice) that asked it
    due: int


# ---- the store -----------------------------------------------------------------------
class History:
    """One connection to the history file; use one per thread or process."""

    def __init__(self, path: Path, timeout: float = BUSY_TIMEOUT_S):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are opened explicitly (BEGIN IMMEDIATE) below
        self.db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        try:
            self.db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA foreign_keys = ON")
            if self.db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("quick_check failed")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.db.close()
            if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED"):
                raise CoachError(f"{self.path} stayed locked by another session for {timeout:g} s; "
                                 "try again when it has finished.") from None
            raise CoachError(f"{self.path} is not a readable history database (it may be damaged); "
                             "move it away to start a new one.") from None

    @classmethod
    def open(cls, settings) -> "History":
        return cls(settings.history_db)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _write(self):
        """One write transaction; IMMEDIATE takes the write lock up front so two writers queue, not deadlock."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _migrate(self) -> None:
        if set(self.applied_migrations()) >= {m.__name__ for m in MIGRATIONS}:
            return  # checked without the write lock: most opens have nothing to do
        with self._write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            applied = {r[0] for r in db.execute("SELECT name FROM schema_migrations")}
            for migration in MIGRATIONS:
                if migration.__name__ not in applied:
                    migration(db)
                    db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (migration.__name__, iso(utcnow())))

    def applied_migrations(self) -> list[str]:
        exists = self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
        if exists.fetchone() is None:
            return []
        return [r[0] for r in self.db.execute("SELECT name FROM schema_migrations ORDER BY name")]

    # ---- sessions ------------------------------------------------------------------
    def create_session(self, session_id: str, config: dict, plan: dict, first: NewTurn, now: datetime) -> None:
        """The session and its first question, together."""
        with self._write() as db:
            db.execute("INSERT INTO sessions (id, started_at, config, plan) VALUES (?, ?, ?, ?)",
                       (session_id, iso(now), json.dumps(config, ensure_ascii=False), json.dumps(plan)))
            _insert_turn(db, session_id, 1, first, now)

    def session(self, session_id: str) -> SessionRecord | None:
        row = self.db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            return None
        return SessionRecord(row["id"], parse_time(row["started_at"]), parse_time(row["finished_at"]), row["status"],
                             json.loads(row["config"]), json.loads(row["plan"]))

    def stop_session(self, session_id: str, now: datetime, status: str = "stopped") -> None:
        """End a session before its last question: the unanswered question is dropped, every answer kept."""
        with self._write() as db:
            db.execute("DELETE FROM turns WHERE session_id = ? AND answered_at IS NULL", (session_id,))
            db.execute("UPDATE sessions SET status = ?, finished_at = ? WHERE id = ? AND status = 'active'",
                       (status, iso(now), session_id))

    def close_abandoned(self, idle: timedelta, now: datetime) -> int:
        """Stop every active session with no question asked or answered for ``idle``: a closed browser
        tab or a client that went away leaves no session "active" for ever. Returns how many."""
        cutoff = iso(now - idle)
        with self._write() as db:
            stale = [r[0] for r in db.execute("""
                SELECT s.id FROM sessions s JOIN turns t ON t.session_id = s.id
                WHERE s.status = 'active' GROUP BY s.id
                HAVING MAX(COALESCE(t.answered_at, t.asked_at)) < ?""", (cutoff,))]
            for session_id in stale:
                db.execute("DELETE FROM turns WHERE session_id = ? AND answered_at IS NULL", (session_id,))
                db.execute("UPDATE sessions SET status = 'stopped', finished_at = ? WHERE id = ?", (iso(now), session_id))
        return len(stale)

    # ---- interviews over the API, by token -------------------------------------------
    def add_token(self, token_hash: str, session_id: str, client: str, now: datetime, per_client: int) -> list[str]:
        """Record an API interview's token; the client's least recently used interviews beyond
        ``per_client`` are stopped (never another client's). Returns the ids stopped."""
        with self._write() as db:
            db.execute("INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?)", (token_hash, session_id, client, iso(now), iso(now)))
            rows = db.execute("""SELECT a.session_id FROM api_tokens a JOIN sessions s ON s.id = a.session_id
                                 WHERE a.client = ? AND s.status = 'active'
                                 ORDER BY a.last_used DESC, a.created_at DESC""", (client,)).fetchall()
            stopped = [r[0] for r in rows[per_client:]]
            for session_id in stopped:
                db.execute("DELETE FROM turns WHERE session_id = ? AND answered_at IS NULL", (session_id,))
                db.execute("UPDATE sessions SET status = 'stopped', finished_at = ? WHERE id = ?", (iso(now), session_id))
        return stopped

    def session_for_token(self, token_hash: str, now: datetime) -> str | None:
        """The session an API token opens (and marks it used), or None."""
        with self._write() as db:
            row = db.execute("SELECT session_id FROM api_tokens WHERE token_hash = ?", (token_hash,)).fetchone()
            if row is not None:
                db.execute("UPDATE api_tokens SET last_used = ? WHERE token_hash = ?", (iso(now), token_hash))
        return row[0] if row else None

    def list_sessions(self, limit: int = 20) -> list[SessionSummary]:
        rows = self.db.execute("""
            SELECT s.id, s.started_at, s.status, s.config,
                   SUM(t.kind = 'question') AS questions,
                   COUNT(t.answered_at) AS answers, AVG(t.score) AS mean_score,
                   GROUP_CONCAT(DISTINCT t.topic) AS topics
            FROM sessions s LEFT JOIN turns t ON t.session_id = s.id AND t.answered_at IS NOT NULL
            GROUP BY s.id ORDER BY s.started_at DESC, s.id DESC LIMIT ?""", (limit,)).fetchall()
        return [SessionSummary(r["id"], parse_time(r["started_at"]), r["status"], r["questions"] or 0, r["answers"],
                               None if r["mean_score"] is None else round(r["mean_score"], 1),
                               sorted((r["topics"] or "").split(",")) if r["topics"] else [],
                               _mode(r["config"])) for r in rows]

    def record_practice(self, session_id: str, turn: NewTurn, graded: GradedAnswer, now: datetime) -> None:
        """One answer graded outside an interview (答案评分): kept as a finished one-question session
        (``config.mode = "grade"``), so it counts in progress and reschedules the question's review."""
        self.create_session(session_id, {"mode": "grade", "topics": [turn.topic]}, {"due": [], "new": [], "other": []},
                            turn, now)
        self.record_answer(session_id, 1, graded, None, now)

    # ---- turns ---------------------------------------------------------------------
    def turns(self, session_id: str) -> list[TurnRecord]:
        rows = self.db.execute("SELECT * FROM turns WHERE session_id = ? ORDER BY seq", (session_id,))
        return [TurnRecord.from_row(r) for r in rows]

    def ask(self, session_id: str, turn: NewTurn, now: datetime) -> int:
        with self._write() as db:
            return _insert_turn(db, session_id, _next_seq(db, session_id), turn, now)

    def reask(self, session_id: str, seq: int, now: datetime) -> None:
        """A resumed question starts its clock again."""
        with self._write() as db:
            db.execute("UPDATE turns SET asked_at = ? WHERE session_id = ? AND seq = ? AND answered_at IS NULL",
                       (iso(now), session_id, seq))

    def record_answer(self, session_id: str, seq: int, graded: GradedAnswer, next_turn: NewTurn | None,
                      now: datetime) -> int | None:
        """Store a graded answer, review its card and ask the next question (or finish), atomically.

        Returns the next question's seq, or None when the session is finished.
        """
        with self._write() as db:
            turn = db.execute("SELECT item_id, topic, answered_at FROM turns WHERE session_id = ? AND seq = ?",
                              (session_id, seq)).fetchone()
            if turn is None or turn["answered_at"] is not None:
                raise CoachError(f"Question {seq} of session {session_id} was already answered or does not exist.")
            db.execute("""UPDATE turns SET answer = ?, score = ?, verdict = ?, grade = ?, elapsed = ?, timed_out = ?,
                          answered_at = ? WHERE session_id = ? AND seq = ?""",
                       (graded.answer, graded.score, graded.verdict, json.dumps(graded.grade, ensure_ascii=False),
                        graded.elapsed, int(graded.timed_out), iso(now), session_id, seq))
            if graded.review:
                _review(db, turn["item_id"], turn["topic"], graded.score, now)
            if next_turn is None:
                db.execute("UPDATE sessions SET status = 'finished', finished_at = ? WHERE id = ?",
                           (iso(now), session_id))
                return None
            return _insert_turn(db, session_id, _next_seq(db, session_id), next_turn, now)

    # ---- review cards ----------------------------------------------------------------
    def review(self, item_id: str, topic: str, score: float | None, now: datetime | None = None) -> CardInfo:
        """Schedule one review of ``item_id`` at ``now`` (outside a session: imports, tests)."""
        with self._write() as db:
            _review(db, item_id, topic, score, now or utcnow())
        return self.cards([item_id])[item_id]

    def card(self, item_id: str) -> Card | None:
        row = self.db.execute("SELECT card FROM review_cards WHERE item_id = ?", (item_id,)).fetchone()
        return Card.from_json(row["card"]) if row else None

    def cards(self, item_ids: list[str] | None = None) -> dict[str, CardInfo]:
        rows = self.db.execute("SELECT item_id, topic, due, last_score, reviews FROM review_cards ORDER BY due")
        wanted = None if item_ids is None else set(item_ids)
        return {r["item_id"]: CardInfo(r["item_id"], r["topic"], parse_time(r["due"]), r["last_score"], r["reviews"])
                for r in rows if wanted is None or r["item_id"] in wanted}

    def due_cards(self, now: datetime | None = None) -> list[CardInfo]:
        """Cards due at ``now``, most overdue first."""
        rows = self.db.execute("SELECT item_id, topic, due, last_score, reviews FROM review_cards "
                               "WHERE due <= ? ORDER BY due, item_id", (iso(now or utcnow()),))
        return [CardInfo(r["item_id"], r["topic"], parse_time(r["due"]), r["last_score"], r["reviews"]) for r in rows]

    # ---- progress --------------------------------------------------------------------
    def topic_progress(self, now: datetime | None = None) -> list[TopicProgress]:
        due = {}
        for card in self.due_cards(now):
            due[card.topic] = due.get(card.topic, 0) + 1
        rows = self.db.execute("SELECT topic, item_id, score, session_id FROM turns WHERE answered_at IS NOT NULL "
                               "ORDER BY answered_at, session_id, seq").fetchall()
        by_topic: dict[str, list[sqlite3.Row]] = {}
        for row in rows:
            by_topic.setdefault(row["topic"], []).append(row)
        out = []
        for topic in sorted(set(by_topic) | set(due)):
            rows_of = by_topic.get(topic, [])
            scores = [r["score"] for r in rows_of]
            latest = [r["score"] for r in rows_of if r["session_id"] == rows_of[-1]["session_id"]] if rows_of else []
            out.append(TopicProgress(topic, len(scores), len({r["item_id"] for r in rows_of}),
                                     _mean(scores), _mean(latest), due.get(topic, 0)))
        return out


def _mode(config: str | None) -> str:
    try:
        value = json.loads(config or "{}")
    except ValueError:
        return "interview"
    return "grade" if isinstance(value, dict) and value.get("mode") == "grade" else "interview"


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def _next_seq(db: sqlite3.Connection, session_id: str) -> int:
    return db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE session_id = ?", (session_id,)).fetchone()[0]


def _insert_turn(db: sqlite3.Connection, session_id: str, seq: int, turn: NewTurn, now: datetime) -> int:
    db.execute("""INSERT INTO turns (session_id, seq, kind, is_follow_up, item_id, topic, difficulty, question, point,
                  asked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
               (session_id, seq, turn.kind, int(turn.kind != "question"), turn.item_id, turn.topic, turn.difficulty,
                turn.question, turn.point, iso(now)))
    return seq


def _review(db: sqlite3.Connection, item_id: str, topic: str, score: float | None, now: datetime) -> None:
    """Read, schedule and write back one card inside the caller's transaction."""
    row = db.execute("SELECT card, reviews FROM review_cards WHERE item_id = ?", (item_id,)).fetchone()
    card = Card.from_json(row["card"]) if row else Card()
    card, _ = SCHEDULER.review_card(card, rating_for(score), review_datetime=now.astimezone(timezone.utc))
    db.execute("""INSERT INTO review_cards (item_id, topic, card, due, last_score, reviews, updated_at)
                  VALUES (?, ?, ?, ?, ?, 1, ?)
                  ON CONFLICT(item_id) DO UPDATE SET topic = excluded.topic, card = excluded.card, due = excluded.due,
                  last_score = excluded.last_score, reviews = reviews + 1, updated_at = excluded.updated_at""",
               (item_id, topic, card.to_json(), iso(card.due), score, iso(now)))
