"""Shared fixtures: every test gets its own state folders; real models, real files."""

from __future__ import annotations

import socket
from contextlib import contextmanager
from pathlib import Path

import pytest

from coach.config import ROOT, Settings
from coach.knowledge import KnowledgeBase

FIXTURES = Path(__file__).parent / "fixtures"
SMALL_CORPUS = FIXTURES / "corpus"


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch):
    """Point every state folder at tmp_path so no test touches a user's data or the checkout's index/."""
    monkeypatch.setenv("COACH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COACH_INDEX_DIR", str(tmp_path / "index"))
    for var in ("COACH_CORPUS", "COACH_EMBEDDER", "COACH_RERANKER", "COACH_LLM_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def small_settings(tmp_path) -> Settings:
    return Settings.from_env(corpus_dir=SMALL_CORPUS, index_dir=tmp_path / "index")


@pytest.fixture
def small_kb(small_settings) -> KnowledgeBase:
    return KnowledgeBase(small_settings)


@pytest.fixture(scope="session")
def real_index_dir(tmp_path_factory) -> Path:
    """The real bank indexed once per test session (with the offline default embedder)."""
    index_dir = tmp_path_factory.mktemp("real-index")
    KnowledgeBase(Settings.from_env(corpus_dir=ROOT / "corpus", index_dir=index_dir)).data
    return index_dir


@pytest.fixture(scope="session")
def real_kb(real_index_dir) -> KnowledgeBase:
    return KnowledgeBase(Settings.from_env(corpus_dir=ROOT / "corpus", index_dir=real_index_dir))


def free_port() -> int:
    """A free TCP port on the loopback interface, for an app started inside a test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(coach, **options):
    """The web app over ``coach`` on a free loopback port, closed afterwards: ``(app, url)``."""
    from coach.webapp import serve

    app, url = serve(port=free_port(), coach=coach, prevent_thread_lock=True, quiet=True, **options)
    try:
        yield app, url
    finally:
        app.close()


@pytest.fixture(scope="module")
def coach(tmp_path_factory):
    """One set of models and one index per test module (the small corpus), as `coach serve` loads them."""
    return small_coach(tmp_path_factory.mktemp("webapp"))


def small_coach(root: Path):
    """The web app's shared engine over the small corpus, as `coach serve` loads it, quietly."""
    from coach.webapp import Coach

    return Coach(Settings.from_env(corpus_dir=SMALL_CORPUS, index_dir=root / "index", home=root / "home"),
                 log=lambda line: None)


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL server (tests/pgserver.py) for the whole run; fails, never skips, when it cannot start."""
    from tests.pgserver import ThrowawayPostgres

    server, problem = ThrowawayPostgres(), None
    try:
        server.start()
    except RuntimeError as exc:
        problem = str(exc)
    if problem:
        pytest.fail(f"PostgreSQL tests cannot run: {problem}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres) -> str:
    """The URL of a fresh, empty database on the session's PostgreSQL server, one per test."""
    import uuid

    return postgres.new_database(f"t{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["sqlite", "postgresql"])
def history_at(request, tmp_path):
    """Where a history lives: a SQLite file, or a fresh database on the throwaway PostgreSQL server
    (the history and interview tests run against both backends)."""
    if request.param == "sqlite":
        return tmp_path / "history.sqlite3"
    return request.getfixturevalue("postgres_url")


def coach_with_users(root: Path, passwords: dict[str, str]):
    """The web app's engine over the small corpus with these accounts in a users file under ``root``."""
    from coach.accounts import Users

    users = Users.load(root / "users.json")
    for name, password in passwords.items():
        users.add(name, password)
    coach = small_coach(root)
    coach.accounts = users
    return coach
