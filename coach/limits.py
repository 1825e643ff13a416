"""Size and type limits on everything a user types, sends or uploads, shared by the CLI, the web app
and its API. Every check returns the cleaned value or raises ``InputError`` with one sentence.

Text is cleaned before it is measured: lone surrogates (which a JSON client or a
non-UTF-8 command line can send) become U+FFFD and NUL characters are dropped,
so no later step meets a string it cannot encode.
"""

from __future__ import annotations

import math
import re

from .errors import InputError

MAX_QUERY_CHARS = 500
MAX_ANSWER_CHARS = 5000
MAX_ID_CHARS = 200  # item ids, document names, interview tokens, topic ids
MAX_LIST_ITEMS = 50  # topics in one interview
MAX_UPLOAD_MB = 20
MAX_LINE_CHARS = 20_000  # one line of a --batch file
MAX_TIME_LIMIT_S = 3600

_SURROGATE = re.compile("[\ud800-\udfff]")


def text(value, field: str, max_chars: int) -> str:
    """``value`` as clean text of at most ``max_chars`` characters (None is empty)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{field} must be text, not {type(value).__name__}.")
    value = _SURROGATE.sub("\ufffd", value).replace("\x00", "")
    if len(value) > max_chars:
        raise InputError(f"{field} has {len(value)} characters; keep it under {max_chars}.")
    return value


def check_query(value) -> str:
    value = text(value, "The question", MAX_QUERY_CHARS).strip()
    if not value:
        raise InputError("The question is empty; type a question to search for.")
    return value


def check_previous(value) -> str:
    """The previous question of a chat (for follow-ups): as bounded as a question, may be empty."""
    return text(value, "The previous question", MAX_QUERY_CHARS).strip()


MAX_HISTORY_MESSAGES = 20


def check_history(value) -> list[dict]:
    """A chat's earlier turns as [{"role": "user"|"assistant", "content": text}], bounded (None is none)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError("The history must be a list of {\"role\", \"content\"} messages.")
    if len(value) > MAX_HISTORY_MESSAGES:
        raise InputError(f"The history has {len(value)} messages; send at most the last {MAX_HISTORY_MESSAGES}.")
    out = []
    for message in value:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise InputError("Each history message must be {\"role\": \"user\" or \"assistant\", \"content\": text}.")
        out.append({"role": message["role"], "content": text(message.get("content"), "A history message", MAX_ANSWER_CHARS)})
    return out


def check_answer(value) -> str:
    return text(value, "The answer", MAX_ANSWER_CHARS).strip()


def check_id(value, field: str = "The id") -> str:
    return text(value, field, MAX_ID_CHARS).strip()


def check_ids(values, field: str = "The topics") -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)):
        raise InputError(f"{field} must be a list of names.")
    if len(values) > MAX_LIST_ITEMS:
        raise InputError(f"{field} list has {len(values)} entries; give at most {MAX_LIST_ITEMS}.")
    return [check_id(v, field) for v in values]


def check_number(value, field: str, low: float, high: float, default: float | None = None) -> float | None:
    """A finite number in [low, high]; None or "" gives ``default``."""
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"{field} must be a number.")
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"{field} must be a number, not {str(value)[:20]!r}.") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise InputError(f"{field} must be between {low:g} and {high:g}.")
    return number
