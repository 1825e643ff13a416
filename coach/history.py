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

Two backends behind the one class: the SQLite file (the default, one per person) and
PostgreSQL when ``COACH_DATABASE_URL`` names one (several replicas, one database). The SQL
is shared (``?`` placeholders, rewritten for psycopg); each backend has its own numbered
migrations. Every row carries ``user_key`` (``accounts.user_key``; empty without accounts)
and every query is filtered by it, so in one database each person sees only their own
sessions, tokens and cards. PostgreSQL write transactions take an advisory lock per user,
the equivalent of SQLite's write lock on that user's file.

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


def m004_user_keys(db: sqlite3.Connection) -> None:
    """Each row names its user (``accounts.user_key``; "" without accounts), as in PostgreSQL; a
    card is now one user's card of an item (the table is rebuilt: SQLite cannot change a primary key)."""
    db.execute("ALTER TABLE sessions ADD COLUMN user_key TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE api_tokens ADD COLUMN user_key TEXT NOT NULL DEFAULT ''")
    db.execute("""CREATE TABLE review_cards_new (
        user_key TEXT NOT NULL DEFAULT '',
        item_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        card TEXT NOT NULL,
        due TEXT NOT NULL,
        last_score REAL,
        reviews INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (user_key, item_id)
    )""")
    db.execute("""INSERT INTO review_cards_new (item_id, topic, card, due, last_score, reviews, updated_at)
                  SELECT item_id, topic, card, due, last_score, reviews, updated_at FROM review_cards""")
    db.execute("DROP TABLE review_cards")
    db.execute("ALTER TABLE review_cards_new RENAME TO review_cards")
    db.execute("CREATE INDEX review_cards_due ON review_cards(user_key, due)")
    db.execute("CREATE INDEX sessions_user ON sessions(user_key, started_at)")


MIGRATIONS = [m001_create_tables, m002_create_indexes, m003_api_tokens, m004_user_keys]


# PostgreSQL: the same tables as SQLite after m004, in its own numbered migrations
def pg001_create_tables(db) -> None:
    db.execute("""CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        user_key TEXT NOT NULL DEFAULT '',
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'finished', 'stopped')),
        config TEXT NOT NULL,
        plan TEXT NOT NULL
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
        point TEXT,
        asked_at TEXT NOT NULL,
        answer TEXT,
        score DOUBLE PRECISION,
        verdict TEXT,
        grade TEXT,
        elapsed DOUBLE PRECISION,
        timed_out INTEGER NOT NULL DEFAULT 0,
        answered_at TEXT,
        PRIMARY KEY (session_id, seq)
    )""")
    db.execute("""CREATE TABLE review_cards (
        user_key TEXT NOT NULL DEFAULT '',
        item_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        card TEXT NOT NULL,
        due TEXT NOT NULL,
        last_score DOUBLE PRECISION,
        reviews INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (user_key, item_id)
    )""")
    db.execute("""CREATE TABLE api_tokens (
        token_hash TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        client TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_used TEXT NOT NULL,
        user_key TEXT NOT NULL DEFAULT ''
    )""")


def pg002_create_indexes(db) -> None:
    db.execute("CREATE INDEX review_cards_due ON review_cards(user_key, due)")
    db.execute("CREATE INDEX turns_topic ON turns(topic, answered_at)")
    db.execute("CREATE INDEX sessions_user ON sessions(user_key, started_at)")
    db.execute("CREATE INDEX api_tokens_client ON api_tokens(user_key, client, last_used)")


def pg003_user_documents(db) -> None:
    """A user's own documents when replicas share the database (``userdocs.py``)."""
    db.execute("""CREATE TABLE user_documents (
        user_key TEXT NOT NULL,
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        added_at TEXT NOT NULL,
        PRIMARY KEY (user_key, name)
    )""")
    db.execute("""CREATE TABLE user_units (
        user_key TEXT NOT NULL,
        name TEXT NOT NULL,
        position INTEGER NOT NULL,
        unit TEXT NOT NULL,         -- the chunk as JSON (index.Unit)
        vectors BYTEA NOT NULL,     -- its vectors, float32, row after row
        fields BYTEA NOT NULL,      -- per vector: 0 question, 1 body (int8)
        PRIMARY KEY (user_key, position),
        FOREIGN KEY (user_key, name) REFERENCES user_documents (user_key, name) ON DELETE CASCADE
    )""")
    db.execute("""CREATE TABLE user_generations (
        user_key TEXT PRIMARY KEY,
        generation BIGINT NOT NULL,  -- bumped by every change: replicas reload when it moves
        embedder TEXT NOT NULL,
        glossary_digest TEXT NOT NULL
    )""")


def pg004_users(db) -> None:
    """Accounts, when replicas share the database (``accounts.DatabaseUsers``; else the users file)."""
    db.execute("""CREATE TABLE users (
        name TEXT PRIMARY KEY,      -- NFKC-normalized
        password TEXT NOT NULL,     -- scrypt$n$r$p$salt$hash, never the password
        created TEXT NOT NULL
    )""")


PG_MIGRATIONS = [pg001_create_tables, pg002_create_indexes, pg003_user_documents, pg004_users]


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
    """One connection to the history (a SQLite file, or PostgreSQL by URL) for one user; use one
    per thread or process. ``user``: the user's key (``accounts.user_key``), "" without accounts."""

    def __init__(self, path, timeout: float = BUSY_TIMEOUT_S, user: str = ""):
        self.user = user
        if is_database_url(path):
            self.path, self.dialect = None, "postgresql"
            self.db = _pg_connect(str(path), timeout)
            try:
                self._migrate()
            except BaseException:
                self.db.close(broken=True)
                raise
            return
        self.dialect = "sqlite"
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
        """The history of ``settings``' user: PostgreSQL when ``database_url`` is set, else their file."""
        url = getattr(settings, "database_url", "")
        return cls(url or settings.history_db, user=getattr(settings, "user", ""))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _q(self, sql: str, params=()):
        """Run one statement on this connection (outside or inside ``_write``)."""
        return self.db.execute(sql, params)

    @contextmanager
    def _write(self):
        """One write transaction. SQLite: IMMEDIATE takes the file's write lock up front, so two
        writers queue, not deadlock. PostgreSQL: an advisory lock per user does the same."""
        if self.dialect == "postgresql":
            with self.db.transaction():
                self.db.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key(self.user),))
                yield self.db
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _migrate(self) -> None:
        migrations = PG_MIGRATIONS if self.dialect == "postgresql" else MIGRATIONS
        if set(self.applied_migrations()) >= {m.__name__ for m in migrations}:
            return  # checked without the write lock: most opens have nothing to do
        with self._write() as db:
            if self.dialect == "postgresql":  # replicas starting together migrate one at a time
                db.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key("schema migrations"),))
            db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            applied = {r[0] for r in db.execute("SELECT name FROM schema_migrations")}
            for migration in migrations:
                if migration.__name__ not in applied:
                    migration(db)
                    db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (migration.__name__, iso(utcnow())))

    def applied_migrations(self) -> list[str]:
        if self.dialect == "postgresql":
            exists = self.db.execute("SELECT 1 FROM information_schema.tables WHERE table_name = 'schema_migrations' "
                                     "AND table_schema = current_schema()")
        else:
            exists = self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
        if exists.fetchone() is None:
            return []
        return [r[0] for r in self.db.execute("SELECT name FROM schema_migrations ORDER BY name")]

    # ---- sessions ------------------------------------------------------------------
    def create_session(self, session_id: str, config: dict, plan: dict, first: NewTurn, now: datetime) -> None:
        """The session and its first question, together."""
        with self._write() as db:
            db.execute("INSERT INTO sessions (id, user_key, started_at, config, plan) VALUES (?, ?, ?, ?, ?)",
                       (session_id, self.user, iso(now), json.dumps(config, ensure_ascii=False), json.dumps(plan)))
            _insert_turn(db, session_id, 1, first, now)

    def session(self, session_id: str) -> SessionRecord | None:
        """This user's session by id (another user's is None, as if it did not exist)."""
        row = self._q("SELECT * FROM sessions WHERE id = ? AND user_key = ?", (session_id, self.user)).fetchone()
        if row is None:
            return None
        return SessionRecord(row["id"], parse_time(row["started_at"]), parse_time(row["finished_at"]), row["status"],
                             json.loads(row["config"]), json.loads(row["plan"]))

    def stop_session(self, session_id: str, now: datetime, status: str = "stopped") -> None:
        """End a session before its last question: the unanswered question is dropped, every answer kept."""
        with self._write() as db:
            if db.execute("SELECT 1 FROM sessions WHERE id = ? AND user_key = ? AND status = 'active'",
                          (session_id, self.user)).fetchone() is None:
                return
            _stop(db, session_id, now, status)

    def close_abandoned(self, idle: timedelta, now: datetime) -> int:
        """Stop every active session with no question asked or answered for ``idle``: a closed browser
        tab or a client that went away leaves no session "active" for ever. Returns how many."""
        cutoff = iso(now - idle)
        with self._write() as db:
            stale = [r[0] for r in db.execute("""
                SELECT s.id FROM sessions s JOIN turns t ON t.session_id = s.id
                WHERE s.status = 'active' AND s.user_key = ? GROUP BY s.id
                HAVING MAX(COALESCE(t.answered_at, t.asked_at)) < ?""", (self.user, cutoff)).fetchall()]
            for session_id in stale:
                _stop(db, session_id, now)
        return len(stale)

    # ---- interviews over the API, by token -------------------------------------------
    def add_token(self, token_hash: str, session_id: str, client: str, now: datetime, per_client: int) -> list[str]:
        """Record an API interview's token; the client's least recently used interviews beyond
        ``per_client`` are stopped (never another client's). Returns the ids stopped."""
        with self._write() as db:
            db.execute("INSERT INTO api_tokens (token_hash, session_id, client, created_at, last_used, user_key) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (token_hash, session_id, client, iso(now), iso(now), self.user))
            rows = db.execute("""SELECT a.session_id FROM api_tokens a JOIN sessions s ON s.id = a.session_id
                                 WHERE a.user_key = ? AND a.client = ? AND s.status = 'active'
                                 ORDER BY a.last_used DESC, a.created_at DESC""", (self.user, client)).fetchall()
            stopped = [r[0] for r in rows[per_client:]]
            for session_id in stopped:
                _stop(db, session_id, now)
        return stopped

    def session_for_token(self, token_hash: str, now: datetime) -> str | None:
        """The session an API token of this user opens (and marks it used), or None."""
        with self._write() as db:
            row = db.execute("SELECT session_id FROM api_tokens WHERE token_hash = ? AND user_key = ?",
                             (token_hash, self.user)).fetchone()
            if row is not None:
                db.execute("UPDATE api_tokens SET last_used = ? WHERE token_hash = ?", (iso(now), token_hash))
        return row[0] if row else None

    def list_sessions(self, limit: int = 20) -> list[SessionSummary]:
        topics = ("STRING_AGG(DISTINCT t.topic, ',')" if self.dialect == "postgresql"
                  else "GROUP_CONCAT(DISTINCT t.topic)")
        rows = self._q(f"""
            SELECT s.id, s.started_at, s.status, s.config,
                   SUM(CASE WHEN t.kind = 'question' THEN 1 ELSE 0 END) AS questions,
                   COUNT(t.answered_at) AS answers, AVG(t.score) AS mean_score,
                   {topics} AS topics
            FROM sessions s LEFT JOIN turns t ON t.session_id = s.id AND t.answered_at IS NOT NULL
            WHERE s.user_key = ?
            GROUP BY s.id, s.started_at, s.status, s.config ORDER BY s.started_at DESC, s.id DESC LIMIT ?""",
                       (self.user, limit)).fetchall()
        return [SessionSummary(r["id"], parse_time(r["started_at"]), r["status"], int(r["questions"] or 0),
                               int(r["answers"]), None if r["mean_score"] is None else round(float(r["mean_score"]), 1),
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
        rows = self._q("SELECT t.* FROM turns t JOIN sessions s ON s.id = t.session_id "
                       "WHERE t.session_id = ? AND s.user_key = ? ORDER BY t.seq", (session_id, self.user)).fetchall()
        return [TurnRecord.from_row(r) for r in rows]

    def ask(self, session_id: str, turn: NewTurn, now: datetime) -> int:
        with self._write() as db:
            self._own(db, session_id)
            return _insert_turn(db, session_id, _next_seq(db, session_id), turn, now)

    def reask(self, session_id: str, seq: int, now: datetime) -> None:
        """A resumed question starts its clock again."""
        with self._write() as db:
            self._own(db, session_id)
            db.execute("UPDATE turns SET asked_at = ? WHERE session_id = ? AND seq = ? AND answered_at IS NULL",
                       (iso(now), session_id, seq))

    def record_answer(self, session_id: str, seq: int, graded: GradedAnswer, next_turn: NewTurn | None,
                      now: datetime) -> int | None:
        """Store a graded answer, review its card and ask the next question (or finish), atomically.

        Returns the next question's seq, or None when the session is finished.
        """
        with self._write() as db:
            self._own(db, session_id)
            turn = db.execute("SELECT item_id, topic, answered_at FROM turns WHERE session_id = ? AND seq = ?",
                              (session_id, seq)).fetchone()
            if turn is None or turn["answered_at"] is not None:
                raise CoachError(f"Question {seq} of session {session_id} was already answered or does not exist.")
            db.execute("""UPDATE turns SET answer = ?, score = ?, verdict = ?, grade = ?, elapsed = ?, timed_out = ?,
                          answered_at = ? WHERE session_id = ? AND seq = ?""",
                       (graded.answer, graded.score, graded.verdict, json.dumps(graded.grade, ensure_ascii=False),
                        graded.elapsed, int(graded.timed_out), iso(now), session_id, seq))
            if graded.review:
                _review(db, self.user, turn["item_id"], turn["topic"], graded.score, now)
            if next_turn is None:
                db.execute("UPDATE sessions SET status = 'finished', finished_at = ? WHERE id = ?",
                           (iso(now), session_id))
                return None
            return _insert_turn(db, session_id, _next_seq(db, session_id), next_turn, now)

    def _own(self, db, session_id: str) -> None:
        if db.execute("SELECT 1 FROM sessions WHERE id = ? AND user_key = ?", (session_id, self.user)).fetchone() is None:
            raise CoachError(f"There is no session {session_id} in this history.")

    # ---- review cards ----------------------------------------------------------------
    def review(self, item_id: str, topic: str, score: float | None, now: datetime | None = None) -> CardInfo:
        """Schedule one review of ``item_id`` at ``now`` (outside a session: imports, tests)."""
        with self._write() as db:
            _review(db, self.user, item_id, topic, score, now or utcnow())
        return self.cards([item_id])[item_id]

    def card(self, item_id: str) -> Card | None:
        row = self._q("SELECT card FROM review_cards WHERE user_key = ? AND item_id = ?",
                      (self.user, item_id)).fetchone()
        return Card.from_json(row["card"]) if row else None

    def cards(self, item_ids: list[str] | None = None) -> dict[str, CardInfo]:
        rows = self._q("SELECT item_id, topic, due, last_score, reviews FROM review_cards WHERE user_key = ? "
                       "ORDER BY due", (self.user,)).fetchall()
        wanted = None if item_ids is None else set(item_ids)
        return {r["item_id"]: CardInfo(r["item_id"], r["topic"], parse_time(r["due"]), r["last_score"], r["reviews"])
                for r in rows if wanted is None or r["item_id"] in wanted}

    def due_cards(self, now: datetime | None = None) -> list[CardInfo]:
        """Cards due at ``now``, most overdue first."""
        rows = self._q("SELECT item_id, topic, due, last_score, reviews FROM review_cards "
                       "WHERE user_key = ? AND due <= ? ORDER BY due, item_id", (self.user, iso(now or utcnow()))).fetchall()
        return [CardInfo(r["item_id"], r["topic"], parse_time(r["due"]), r["last_score"], r["reviews"]) for r in rows]

    # ---- progress --------------------------------------------------------------------
    def topic_progress(self, now: datetime | None = None) -> list[TopicProgress]:
        due = {}
        for card in self.due_cards(now):
            due[card.topic] = due.get(card.topic, 0) + 1
        rows = self._q("SELECT t.topic, t.item_id, t.score, t.session_id FROM turns t JOIN sessions s "
                       "ON s.id = t.session_id WHERE s.user_key = ? AND t.answered_at IS NOT NULL "
                       "ORDER BY t.answered_at, t.session_id, t.seq", (self.user,)).fetchall()
        by_topic: dict[str, list] = {}
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


def _stop(db, session_id: str, now: datetime, status: str = "stopped") -> None:
    db.execute("DELETE FROM turns WHERE session_id = ? AND answered_at IS NULL", (session_id,))
    db.execute("UPDATE sessions SET status = ?, finished_at = ? WHERE id = ? AND status = 'active'",
               (status, iso(now), session_id))


def _review(db, user: str, item_id: str, topic: str, score: float | None, now: datetime) -> None:
    """Read, schedule and write back one card inside the caller's transaction."""
    row = db.execute("SELECT card, reviews FROM review_cards WHERE user_key = ? AND item_id = ?",
                     (user, item_id)).fetchone()
    card = Card.from_json(row["card"]) if row else Card()
    card, _ = SCHEDULER.review_card(card, rating_for(score), review_datetime=now.astimezone(timezone.utc))
    db.execute("""INSERT INTO review_cards (user_key, item_id, topic, card, due, last_score, reviews, updated_at)
                  VALUES (?, ?, ?, ?, ?, ?, 1, ?)
                  ON CONFLICT(user_key, item_id) DO UPDATE SET topic = excluded.topic, card = excluded.card,
                  due = excluded.due, last_score = excluded.last_score, reviews = review_cards.reviews + 1,
                  updated_at = excluded.updated_at""",
               (user, item_id, topic, card.to_json(), iso(card.due), score, iso(now)))


# ---- PostgreSQL -------------------------------------------------------------------------
def is_database_url(value) -> bool:
    return isinstance(value, str) and value.split(":", 1)[0] in ("postgresql", "postgres")


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for ``name`` (a user's key, or a fixed name)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"coach:{name}".encode()).digest()[:8], "big", signed=True)


class _PgRow(dict):
    """A row by column name (as sqlite3.Row) or by position."""

    def __getitem__(self, key):
        if isinstance(key, int):
            return list(self.values())[key]
        return dict.__getitem__(self, key)


def _pg_row(cursor):
    names = [c.name for c in cursor.description or []]
    return lambda values: _PgRow(zip(names, values))


class _PgConnection:
    """A pooled psycopg connection speaking the SQLite module's ``execute(sql, params)`` with ``?``
    placeholders; ``close()`` hands it back to the pool (a connection costs a server process)."""

    def __init__(self, url: str, conn, pool: "_Pool"):
        self.url, self.conn, self.pool = url, conn, pool

    def execute(self, sql: str, params=()):
        return self.conn.execute(sql.replace("?", "%s"), tuple(params))

    def executemany(self, sql: str, rows) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])

    def transaction(self):
        return self.conn.transaction()

    def close(self, broken: bool = False) -> None:
        if self.conn is not None:
            self.pool.give_back(self.conn, broken)
            self.conn = None


class _Pool:
    """Idle connections per database URL, at most ``keep`` of them; any number may be out at once."""

    def __init__(self, keep: int = 16):
        import threading

        self.keep, self.idle, self.lock = keep, [], threading.Lock()

    def take(self, url: str, timeout: float):
        with self.lock:
            while self.idle:
                conn = self.idle.pop()
                if not conn.closed:
                    return conn
        import psycopg

        try:
            return psycopg.connect(url, autocommit=True, row_factory=_pg_row, connect_timeout=max(1, int(timeout)))
        except psycopg.OperationalError:
            raise CoachError(f"Cannot reach the history database at {_safe_url(url)}; check that PostgreSQL is "
                             "running and COACH_DATABASE_URL is right.") from None

    def give_back(self, conn, broken: bool) -> None:
        from psycopg.pq import TransactionStatus

        if broken or conn.closed or conn.info.transaction_status != TransactionStatus.IDLE:
            conn.close()
            return
        with self.lock:
            if len(self.idle) < self.keep:
                self.idle.append(conn)
                return
        conn.close()


_POOLS: dict[str, _Pool] = {}


def _pg_connect(url: str, timeout: float) -> _PgConnection:
    pool = _POOLS.setdefault(url, _Pool())
    return _PgConnection(url, pool.take(url, timeout), pool)


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    return f"{parts.scheme}://{parts.username + '@' if parts.username else ''}{host}{':' + str(parts.port) if parts.port else ''}{parts.path}"
