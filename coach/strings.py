"""The web app's strings (``resources/webapp.yaml``): one place for every text a page or a report shows.

Chinese is the default; ``resources/webapp.en.yaml`` holds the English strings, keyed the same way
(a key it lacks falls back to the Chinese one). The language of the strings is the current
context's (:func:`use_language`, set per request from the page's language switch), or ``lang=``.

No Gradio here: the application service (``service.py``) uses these too.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

import yaml

from .config import RESOURCES
from .errors import CoachError


LANGUAGES = ("zh", "en")  # the first is the default
_LANGUAGE: ContextVar[str] = ContextVar("coach_language", default=LANGUAGES[0])
_FILES = {"zh": "webapp.yaml", "en": "webapp.en.yaml"}


def language_of(value) -> str:
    """A known language code ("zh", "en"), the default for anything else."""
    return value if value in LANGUAGES else LANGUAGES[0]



def language() -> str:
    """The current context's language."""
    return _LANGUAGE.get()



@contextmanager
def use_language(lang):
    """Strings in ``lang`` inside the block (this thread/context only: other users are unaffected)."""
    token = _LANGUAGE.set(language_of(lang))
    try:
        yield
    finally:
        _LANGUAGE.reset(token)



@lru_cache(maxsize=len(LANGUAGES))
def strings(lang: str | None = None) -> dict:
    lang = language_of(lang)
    base = yaml.safe_load((RESOURCES / _FILES[LANGUAGES[0]]).read_text(encoding="utf-8"))
    if lang == LANGUAGES[0]:
        return base
    return _merged(base, yaml.safe_load((RESOURCES / _FILES[lang]).read_text(encoding="utf-8")) or {})



def _merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out



def t(path: str, lang: str | None = None, **values) -> Any:
    """The string at ``path`` ("chat.send") with ``{placeholders}`` filled, in ``lang`` or the current language."""
    node: Any = strings(lang or language())
    for key in path.split("."):
        node = node[key]
    return node.format(**values) if values and isinstance(node, str) else node



def message_for(exc: CoachError) -> str:
    """The error's one sentence in Chinese when the strings file knows it, else as it is (engine
    messages are English sentences: the English page shows them as they are)."""
    text = str(exc)
    for rule in strings(language())["messages"]:
        match = re.search(rule["pattern"], text)
        if match:
            return rule["text"].format(**match.groupdict())
    return text



def difficulty_name(level: int | str | None) -> str:
    return strings(language())["difficulty"].get(int(level), str(level)) if str(level).isdigit() else str(level or "")

