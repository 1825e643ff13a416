"""Where things live and which backends to use, from the environment.

Every setting has an environment variable so that the CLI, the web app, the
benchmarks and the tests (which point ``COACH_HOME`` at a temporary folder)
read the same values the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = Path(__file__).resolve().parent / "resources"

DEFAULT_EMBEDDER = "use-multilingual"


def load_yaml(text: str):
    """``yaml.safe_load`` through libyaml when PyYAML has it (about ten times faster on the bank)."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _path(var: str, default: Path) -> Path:
    value = os.environ.get(var, "").strip()
    return Path(value).expanduser() if value else default


def env_flag(var: str) -> bool:
    """An on/off environment variable: 1, true, yes or on."""
    return os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")


def _seconds(value: str, default: float) -> float:
    try:
        seconds = float(value)
    except ValueError:
        return default
    return seconds if 0 < seconds <= 600 else default


def _home_default() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("interview-coach", appauthor=False))


@dataclass(frozen=True)
class Settings:
    """The coach's settings; ``Settings.from_env()`` is the only constructor used."""

    corpus_dir: Path
    index_dir: Path
    home: Path
    embedder: str = DEFAULT_EMBEDDER
    reranker: str = ""
    llm_url: str = ""
    llm_model: str = ""
    llm_api_key: str = field(default="", repr=False)
    llm_timeout: float = 30.0  # seconds for one request; past it the offline answer is given
    llm_judge: bool = False  # ask the model for a second-opinion score beside the offline one
    llm_unsourced: bool = False  # let the model answer from its own knowledge when nothing in the knowledge base does
    database_url: str = field(default="", repr=False)  # postgresql://...: history and users' documents there
    user: str = ""  # whose space this is (accounts.user_key); "" without accounts

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        values = dict(
            corpus_dir=_path("COACH_CORPUS", ROOT / "corpus"),
            index_dir=_path("COACH_INDEX_DIR", ROOT / "index"),
            home=_path("COACH_HOME", _home_default()),
            embedder=os.environ.get("COACH_EMBEDDER", "").strip() or DEFAULT_EMBEDDER,
            reranker=os.environ.get("COACH_RERANKER", "").strip(),
            llm_url=os.environ.get("COACH_LLM_URL", "").strip(),
            llm_model=os.environ.get("COACH_LLM_MODEL", "").strip(),
            llm_api_key=os.environ.get("COACH_LLM_API_KEY", "").strip(),
            llm_timeout=_seconds(os.environ.get("COACH_LLM_TIMEOUT", ""), 30.0),
            llm_judge=env_flag("COACH_LLM_JUDGE"),
            llm_unsourced=env_flag("COACH_LLM_UNSOURCED"),
            database_url=os.environ.get("COACH_DATABASE_URL", "").strip(),
        )
        values.update({k: v for k, v in overrides.items() if v not in (None, "")})
        for key in ("corpus_dir", "index_dir", "home"):
            values[key] = Path(values[key]).expanduser()
        return cls(**values)

    @property
    def history_db(self) -> Path:
        return self.home / "history.sqlite3"
