"""The history file: migrated, concurrent-safe, atomic per answer, and the memory behind spaced review."""

import sqlite3
import threading
from datetime import timedelta

import psycopg
import pytest
from fsrs import Card, Rating

from coach.errors import CoachError
from coach.history import MIGRATIONS, GradedAnswer, History, NewTurn, rating_for, utcnow


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "history.sqlite3"


def integrity_ok(history) -> bool:
    if history.dialect == "sqlite":
        return history.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return history.db.execute("SELECT 1").fetchone()[0] == 1  # PostgreSQL has no file to damage


def turn(item_id="norm-bn-purpose", topic="normalization", kind="question"):
    return NewTurn(kind, item_id, topic, 1, f"question about {item_id}")


def graded(score=5.0, review=True):
    return GradedAnswer("an answer", score, "及格", {"score": score, "missing": []}, 3.0, False, review)


# ---- opening and migrating --------------------------------------------------------
def test_a_new_file_gets_every_migration_in_order_and_reopening_applies_none_again(db_path):
    History(db_path).close()
    with History(db_path) as history:
        assert history.applied_migrations() == [m.__name__ for m in MIGRATIONS] == [
            "m001_create_tables", "m002_create_indexes", "m003_api_tokens", "m004_user_keys"]
        count = history.db.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0]
    assert count == len(MIGRATIONS)


def test_the_connection_uses_wal_a_busy_timeout_and_foreign_keys(db_path):
    with History(db_path) as history:
        assert history.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert history.db.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
        assert history.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        with pytest.raises(sqlite3.IntegrityError):  # a turn cannot point at a session that does not exist
            history.db.execute("INSERT INTO turns (session_id, seq, kind, is_follow_up, item_id, topic, difficulty, "
                               "question, asked_at) VALUES ('no-such-session', 1, 'question', 0, 'x', 't', 1, 'q', 'now')")
        with pytest.raises(CoachError):  # and the history says so in one sentence first
            history.ask("no-such-session", turn(), utcnow())


def test_a_history_written_before_user_keys_is_upgraded_with_its_cards_and_sessions(db_path):
    from coach.history import m001_create_tables, m002_create_indexes, m003_api_tokens

    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for migration in (m001_create_tables, m002_create_indexes, m003_api_tokens):
        migration(db)
        db.execute("INSERT INTO schema_migrations VALUES (?, 'then')", (migration.__name__,))
    db.execute("INSERT INTO sessions (id, started_at, config, plan) VALUES ('s1', '2026-12-01T10:00:00.000000+00:00', "
               "'{}', '{}')")
    db.execute("INSERT INTO review_cards VALUES ('bn', 'normalization', ?, '2026-12-02T10:00:00.000000+00:00', 6.5, 2, "
               "'2026-12-01T10:00:00.000000+00:00')", (Card().to_json(),))
    db.commit()
    db.close()
    with History(db_path) as history:
        assert history.applied_migrations()[-1] == "m004_user_keys"
        assert history.session("s1") is not None
        assert history.cards()["bn"].reviews == 2
        history.review("bn", "normalization", 8.0, utcnow())
        assert history.cards()["bn"].reviews == 3
    with History(db_path, user="someone-else") as other:  # another user's view of the same file is empty
        assert other.session("s1") is None and other.cards() == {}


def test_a_file_that_is_not_a_database_is_reported_in_one_sentence(db_path):
    db_path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CoachError, match="not a readable history database"):
        History(db_path)


def test_a_file_locked_for_longer_than_the_busy_timeout_is_reported_in_one_sentence(db_path):
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of a long write
    try:
        with pytest.raises(CoachError, match="locked by another session"):
            History(db_path, timeout=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# ---- answers are atomic -----------------------------------------------------------------
def test_an_answer_its_card_and_the_next_question_are_committed_together(history_at):
    with History(history_at) as history:
        history.create_session("s1", {"questions": 2}, {"due": [], "new": [], "other": []}, turn(), utcnow())
        next_seq = history.record_answer("s1", 1, graded(5.0), turn("norm-bn-vs-ln"), utcnow())
        assert next_seq == 2
    with History(history_at) as reopened:  # a fresh connection sees everything
        turns = reopened.turns("s1")
        assert [(t.seq, t.answered, t.score) for t in turns] == [(1, True, 5.0), (2, False, None)]
        assert reopened.cards()["norm-bn-purpose"].last_score == 5.0


def test_a_failure_while_storing_an_answer_leaves_the_file_as_it_was(history_at):
    with History(history_at) as history:
        history.create_session("s1", {}, {"due": [], "new": [], "other": []}, turn(), utcnow())
        broken = NewTurn("not-a-kind", "x", "normalization", 1, "?")  # violates the CHECK constraint
        with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)):
            history.record_answer("s1", 1, graded(), broken, utcnow())
        assert not history.turns("s1")[0].answered
        assert history.cards() == {}


def test_the_same_question_cannot_be_answered_twice(history_at):
    with History(history_at) as history:
        history.create_session("s1", {}, {"due": [], "new": [], "other": []}, turn(), utcnow())
        history.record_answer("s1", 1, graded(), None, utcnow())
        with pytest.raises(CoachError, match="already answered"):
            history.record_answer("s1", 1, graded(), None, utcnow())
        assert history.session("s1").status == "finished"


# ---- two writers at once -------------------------------------------------------------------
def test_two_connections_writing_at_once_keep_every_row(history_at):
    History(history_at).close()
    rounds, barrier, errors = 40, threading.Barrier(2), []

    def writer(name: str) -> None:
        try:
            with History(history_at) as history:
                barrier.wait()
                history.create_session(name, {}, {"due": [], "new": [], "other": []}, turn(), utcnow())
                for seq in range(1, rounds + 1):
                    last = seq == rounds
                    history.record_answer(name, seq, graded(seq % 10), None if last else turn(f"item-{seq}"), utcnow())
        except Exception as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with History(history_at) as history:
        assert integrity_ok(history)
        for name in ("a", "b"):
            turns = history.turns(name)
            assert [t.seq for t in turns] == list(range(1, rounds + 1)) and all(t.answered for t in turns)
            assert history.session(name).status == "finished"


# ---- spaced repetition -----------------------------------------------------------------------
@pytest.mark.parametrize("score, rating", [
    (None, Rating.Again), (0.0, Rating.Again), (4.4, Rating.Again), (4.5, Rating.Hard), (6.4, Rating.Hard),
    (6.5, Rating.Good), (8.4, Rating.Good), (8.5, Rating.Easy), (10.0, Rating.Easy),
], ids=["skip", "zero", "just-below-hard", "hard", "just-below-good", "good", "just-below-easy", "easy", "perfect"])
def test_a_score_maps_to_an_fsrs_rating(score, rating):
    assert rating_for(score) == rating


def test_a_missed_question_is_due_soon_and_a_strong_one_much_later(history_at):
    now = utcnow()
    with History(history_at) as history:
        missed = history.review("norm-bn-purpose", "normalization", 0.0, now=now)
        strong = history.review("act-why-nonlinear", "activation", 9.5, now=now)
        assert timedelta(hours=23) <= missed.due - now <= timedelta(days=1, minutes=1)  # tomorrow, not in minutes
        assert strong.due - now >= timedelta(days=3)
        assert history.due_cards(now) == []
        assert [c.item_id for c in history.due_cards(now + timedelta(days=1))] == ["norm-bn-purpose"]
        assert len(history.due_cards(now + timedelta(days=60))) == 2


def test_the_same_reviews_give_the_same_due_dates(tmp_path):
    now = utcnow()
    dues = []
    for name in ("one", "two"):
        with History(tmp_path / f"{name}.sqlite3") as history:
            for days, score in enumerate([3.0, 7.0, 9.0]):
                card = history.review("norm-bn-purpose", "normalization", score, now=now + timedelta(days=days))
            dues.append(card.due)
    assert dues[0] == dues[1]


# ---- summaries ---------------------------------------------------------------------------------
def test_sessions_and_topic_progress_are_summarised(history_at):
    now = utcnow()
    with History(history_at) as history:
        history.create_session("s1", {}, {"due": [], "new": [], "other": []}, turn(), now)
        history.record_answer("s1", 1, graded(4.0), turn("norm-bn-vs-ln", kind="follow_up"), now)
        history.record_answer("s1", 2, graded(8.0), turn("act-why-nonlinear", "activation"), now)
        history.record_answer("s1", 3, graded(9.0), None, now)
        [summary] = history.list_sessions()
        progress = {p.topic: p for p in history.topic_progress(now + timedelta(days=2, minutes=1))}
    assert (summary.id, summary.status, summary.questions, summary.answers) == ("s1", "finished", 2, 3)
    assert summary.mean_score == 7.0 and summary.topics == ["activation", "normalization"]
    assert (progress["normalization"].answers, progress["normalization"].items) == (2, 2)
    assert progress["normalization"].mean_score == 6.0 and progress["activation"].mean_score == 9.0
    assert progress["normalization"].due == 2 and progress["activation"].due == 0


# ---- PostgreSQL ---------------------------------------------------------------------------------
def test_a_new_postgresql_database_gets_its_numbered_migrations_once(postgres_url):
    from coach.history import PG_MIGRATIONS

    History(postgres_url).close()
    with History(postgres_url) as history:
        assert history.dialect == "postgresql"
        assert history.applied_migrations() == [m.__name__ for m in PG_MIGRATIONS] == [
            "pg001_create_tables", "pg002_create_indexes", "pg003_user_documents", "pg004_users"]
        assert history.db.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == len(PG_MIGRATIONS)


def test_replicas_starting_together_migrate_a_new_database_once(postgres_url):
    errors = []

    def start() -> None:
        try:
            History(postgres_url).close()
        except Exception as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with History(postgres_url) as history:
        assert history.db.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == 4


def test_users_sharing_one_database_see_only_their_own_sessions_and_cards(postgres_url):
    with History(postgres_url, user="alice") as alice:
        alice.create_session("s-alice", {}, {"due": [], "new": [], "other": []}, turn(), utcnow())
        alice.record_answer("s-alice", 1, graded(3.0), None, utcnow())
    with History(postgres_url, user="bob") as bob:
        assert bob.session("s-alice") is None and bob.turns("s-alice") == []
        assert bob.list_sessions() == [] and bob.cards() == {} and bob.topic_progress() == []
        with pytest.raises(CoachError):
            bob.record_answer("s-alice", 2, graded(), None, utcnow())
        bob.stop_session("s-alice", utcnow())
    with History(postgres_url, user="alice") as alice:
        assert alice.session("s-alice").status == "finished" and len(alice.cards()) == 1


def test_two_replicas_answering_the_same_question_record_it_once(postgres_url):
    with History(postgres_url, user="u") as history:
        history.create_session("s1", {}, {"due": [], "new": [], "other": []}, turn(), utcnow())
    barrier, outcomes = threading.Barrier(2), []

    def answer() -> None:
        with History(postgres_url, user="u") as history:
            barrier.wait()
            try:
                history.record_answer("s1", 1, graded(), turn("norm-bn-vs-ln"), utcnow())
                outcomes.append("ok")
            except CoachError:
                outcomes.append("refused")

    threads = [threading.Thread(target=answer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "refused"]
    with History(postgres_url, user="u") as history:
        assert [(t.seq, t.answered) for t in history.turns("s1")] == [(1, True), (2, False)]
        assert history.cards()["norm-bn-purpose"].reviews == 1


def test_an_unreachable_database_is_one_sentence_without_its_password():
    from tests.conftest import free_port

    url = f"postgresql://coach:s3cret@127.0.0.1:{free_port()}/coach"
    with pytest.raises(CoachError, match="Cannot reach the history database") as caught:
        History(url)
    assert "s3cret" not in str(caught.value)
