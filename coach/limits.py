"""Size limits on everything a user types or uploads, shared by the CLI and the web app."""

from __future__ import annotations

from .errors import InputError

MAX_QUERY_CHARS = 500
MAX_ANSWER_CHARS = 5000
MAX_UPLOAD_MB = 20


def check_query(text: str | None) -> str:
    text = (text or "").strip()
    if not text:
        raise InputError("The question is empty; type a question to search for.")
    if len(text) > MAX_QUERY_CHARS:
        raise InputError(f"The question has {len(text)} characters; keep it under {MAX_QUERY_CHARS}.")
    return text


def check_answer(text: str | None) -> str:
    text = (text or "").strip()
    if len(text) > MAX_ANSWER_CHARS:
        raise InputError(f"The answer has {len(text)} characters; keep it under {MAX_ANSWER_CHARS}.")
    return text
