"""Document ingestion: one user file in, clean chunks for the RAG index out.

The pipeline, one module per step:

    readers   file -> plain text with light markdown hints ("# heading", "- item")
    clean     web-page noise out (related-question widgets, floor/date lines, bare URLs ...)
    qa        text -> titled blocks: a question with its whole answer, or a titled section
    chunking  block -> chunks of at most ``max_chars``, cut at sentence ends

Everything a user can get wrong (wrong type, missing, empty, too large,
corrupt, undecodable) becomes an ``IngestError`` whose message is one
sentence naming the file's base name and saying what to do; anything else
is a bug and keeps its traceback.

Compromises: structure detection is heuristic (see ``qa``); a file is read
into memory whole, which ``MAX_FILE_BYTES`` keeps affordable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import IngestError


@dataclass(frozen=True)
class Chunk:
    source: str    # the file's base name, e.g. "notes.md" (never a full path)
    title: str     # section title, or the question of a Q&A pair; "" if none
    text: str      # the chunk body (for a Q&A pair: the answer part; never includes noise)
    position: int  # 0-based order of the chunk within its source
    kind: str      # "qa" (question + answer pair), "section" (titled section), "text" (plain)


SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
MAX_FILE_BYTES = 20 * 1024 * 1024

# What to suggest when a file turns out to hold no text, by type.
_NO_TEXT_HINT = {
    ".pdf": "it may be a scanned image, so run OCR on it first",
    ".html": "save the page's article text instead",
    ".htm": "save the page's article text instead",
}


def load_chunks(path, *, max_chars: int = 600, overlap: int = 80) -> list[Chunk]:
    """Read one file and return its chunks; raise coach.errors.IngestError with one clear
    sentence (naming the file's base name and saying what to do) for: unsupported type,
    missing file, empty file or file with no text after cleaning, file over MAX_FILE_BYTES,
    corrupt/unreadable pdf or docx, undecodable text."""
    from .readers import extract_text

    path = Path(path)
    _check_file(path)
    text = extract_text(path)
    return chunks_from_text(text, path.name, max_chars=max_chars, overlap=overlap)


def chunks_from_text(text: str, source: str, *, max_chars=600, overlap=80) -> list[Chunk]:
    """Same pipeline for text already in memory (used by tests and uploads)."""
    from .chunking import chunk_sections
    from .clean import clean_text
    from .qa import parse_sections

    name = base_name(source)
    pieces = chunk_sections(parse_sections(clean_text(text or "")), max_chars=max_chars, overlap=overlap)
    if not pieces:
        hint = _NO_TEXT_HINT.get(Path(name).suffix.lower(), "check that it contains text")
        raise IngestError(f"{name} has no readable text after cleaning; {hint}.")
    return [Chunk(source=name, title=p.title, text=p.text, position=i, kind=p.kind) for i, p in enumerate(pieces)]


def base_name(source) -> str:
    """``"C:\\notes\\a.md"`` and ``"/tmp/a.md"`` both give ``"a.md"``: uploads may carry either kind of path."""
    return re.split(r"[\\/]", str(source).rstrip("\\/"))[-1] or str(source)


def _check_file(path: Path) -> None:
    """Reject, before reading, what cannot be ingested; each check names the file and the fix."""
    name = path.name
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        kinds = ", ".join(SUPPORTED_SUFFIXES)
        raise IngestError(f"{name} is not a supported file type; convert it to one of {kinds}.")
    try:
        if not path.is_file():
            problem = "is a folder, not a file" if path.is_dir() else "does not exist"
            raise IngestError(f"{name} {problem}; check the path and try again.")
        size = path.stat().st_size
    except OSError:
        raise IngestError(f"Cannot open {name}; check that the file exists and is readable.") from None
    if size == 0:
        raise IngestError(f"{name} is empty; add some text to it or choose another file.")
    # Read the limit at call time so that tests (and callers) can lower it.
    if size > MAX_FILE_BYTES:
        raise IngestError(f"{name} is {_size(size)}, over the {_size(MAX_FILE_BYTES)} limit; split it into smaller files.")


def _size(n: int) -> str:
    for unit, factor in (("MB", 2**20), ("KB", 2**10)):
        if n >= factor:
            return f"{n / factor:.3g} {unit}"
    return f"{n} bytes"
