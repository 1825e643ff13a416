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

Every document's cost is bounded while it is read: its size, pages, decompressed
bytes, paragraphs, characters, chunks and wall time (the ``MAX_*`` limits below);
``collect`` walks folders and takes only regular files inside the folder given.

Compromises: structure detection is heuristic (see ``qa``); a file is read
into memory whole, which ``MAX_FILE_BYTES`` keeps affordable; the wall-time
limit uses a timer signal, so it holds in the main thread (the CLI, and the
worker process the web app ingests in), elsewhere only the count limits do.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import IngestError


@dataclass(frozen=True)
class Chunk:
    source: str    # the document's name: its relative path, e.g. "notes/bn.md" (never absolute, no "..")
    title: str     # section title, or the question of a Q&A pair; "" if none
    text: str      # the chunk body (for a Q&A pair: the answer part; never includes noise)
    position: int  # 0-based order of the chunk within its source
    kind: str      # "qa" (question + answer pair), "section" (titled section), "text" (plain)


SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")

# What one document may cost. Each is checked while reading, before the work it bounds.
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_PDF_PAGES = 1500
MAX_UNPACKED_BYTES = 60 * 1024 * 1024   # a .docx's decompressed parts; a PDF stream (pypdf's filters)
MAX_PARAGRAPHS = 50_000                 # paragraphs of a .docx
MAX_TEXT_CHARS = 3_000_000              # extracted text of any document
MAX_CHUNKS = 6000
MAX_SECONDS = 120                       # wall time to read and chunk one document

# What to suggest when a file turns out to hold no text, by type.
_NO_TEXT_HINT = {
    ".pdf": "it may be a scanned image, so run OCR on it first",
    ".html": "save the page's article text instead",
    ".htm": "save the page's article text instead",
}


def load_chunks(path, *, name: str | None = None, max_chars: int = 600, overlap: int = 80) -> list[Chunk]:
    """Read one file and return its chunks; raise coach.errors.IngestError with one clear
    sentence (naming the file and saying what to do) for: unsupported type, missing file,
    not a regular file, empty file or file with no text after cleaning, a file over any of
    the limits above, corrupt/unreadable pdf or docx, undecodable text.

    ``name`` is the document's identity in the index (default: the file's base name)."""
    path = Path(path)
    data = read_document(path)
    return chunks_from_bytes(data, name or path.name, suffix=path.suffix, max_chars=max_chars, overlap=overlap)


def chunks_from_bytes(data: bytes, name: str, *, suffix: str | None = None, max_chars=600, overlap=80) -> list[Chunk]:
    """Chunks of a document already read into memory (``read_document``), within the time limit."""
    from .readers import extract_text

    suffix = (suffix or Path(name).suffix).lower()
    with deadline(MAX_SECONDS, display(name)):
        text = extract_text(data, suffix, display(name))
        if len(text) > MAX_TEXT_CHARS:
            raise IngestError(f"{display(name)} holds over {MAX_TEXT_CHARS:,} characters of text; split it into smaller files.")
        return chunks_from_text(text, name, max_chars=max_chars, overlap=overlap)


def chunks_from_text(text: str, source: str, *, max_chars=600, overlap=80) -> list[Chunk]:
    """Same pipeline for text already in memory (used by tests and uploads)."""
    from .chunking import chunk_sections
    from .clean import clean_text
    from .qa import parse_sections

    name = source_name(source)
    pieces = chunk_sections(parse_sections(clean_text(text or "")), max_chars=max_chars, overlap=overlap)
    if not pieces:
        hint = _NO_TEXT_HINT.get(Path(name).suffix.lower(), "check that it contains text")
        raise IngestError(f"{display(name)} has no readable text after cleaning; {hint}.")
    if len(pieces) > MAX_CHUNKS:
        raise IngestError(f"{display(name)} gives over {MAX_CHUNKS} chunks; split it into smaller files.")
    return [Chunk(source=name, title=p.title, text=p.text, position=i, kind=p.kind) for i, p in enumerate(pieces)]


def base_name(source) -> str:
    """``"C:\\notes\\a.md"`` and ``"/tmp/a.md"`` both give ``"a.md"``: uploads may carry either kind of path."""
    return re.split(r"[\\/]", str(source).rstrip("\\/"))[-1] or str(source)


def source_name(source) -> str:
    """A document's identity as stored: a relative path with ``/`` separators and no ``..``, absolute
    part or drive; anything else is reduced to its base name."""
    parts = [p for p in re.split(r"[\\/]", str(source)) if p not in ("", ".")]
    if not parts or ".." in parts or re.match(r"^[A-Za-z]:", str(source)) or str(source).startswith(("/", "\\")):
        return base_name(source)
    return "/".join(parts)


def display(name: str) -> str:
    """A name safe to print in one sentence (no control characters, bounded length)."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in str(name))
    return clean if len(clean) <= 120 else clean[:60] + "…" + clean[-50:]


# ---- reading files safely ---------------------------------------------------------------------
def read_document(path: Path) -> bytes:
    """The bytes of a regular file of a supported type and size, read without following it into a
    device or FIFO: the file is opened non-blocking and checked with fstat before any byte is read."""
    name = display(path.name)
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        kinds = ", ".join(SUPPORTED_SUFFIXES)
        raise IngestError(f"{name} is not a supported file type; convert it to one of {kinds}.")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError:
        raise IngestError(f"{name} is a folder, not a file; check the path and try again.") from None
    except FileNotFoundError:
        raise IngestError(f"{name} does not exist; check the path and try again.") from None
    except OSError:
        raise IngestError(f"Cannot open {name}; check that the file exists and is readable.") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IngestError(f"{name} is a folder, not a file; check the path and try again.")
        if not stat.S_ISREG(info.st_mode):
            raise IngestError(f"{name} is not a regular file (a device, pipe or socket); skipped.")
        if info.st_size == 0:
            raise IngestError(f"{name} is empty; add some text to it or choose another file.")
        if info.st_size > MAX_FILE_BYTES:
            raise IngestError(f"{name} is {_size(info.st_size)}, over the {_size(MAX_FILE_BYTES)} limit; "
                              "split it into smaller files.")
        chunks, total = [], 0
        while total <= MAX_FILE_BYTES:
            block = os.read(fd, 1 << 20)
            if not block:
                break
            chunks.append(block)
            total += len(block)
        if total > MAX_FILE_BYTES:  # it grew while being read
            raise IngestError(f"{name} is over the {_size(MAX_FILE_BYTES)} limit; split it into smaller files.")
        return b"".join(chunks)
    except OSError:
        raise IngestError(f"Cannot read {name}; check that the file is readable.") from None
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Found:
    """A file to ingest and the name it will have in the index."""

    path: Path
    name: str


def collect(paths) -> tuple[list[Found], dict[str, str]]:
    """The files that ``paths`` (files or folders) name, and a sentence for each one skipped.

    A folder is walked for the supported types (hidden files and folders skipped). Only regular
    files are taken, and a link is followed only when it leads to a file inside the folder given
    (for a file argument: inside its own folder). A document is named by its path as given when
    that is relative (``a/notes.md``; a folder's files as ``notes/x.md``, or ``x.md`` for ``.``),
    else by the folder's name and the path inside it, or the file's base name."""
    found: list[Found] = []
    skipped: dict[str, str] = {}
    seen: set[str] = set()
    for arg in paths:
        arg = Path(arg)
        shown = display(str(arg))
        try:
            info = os.stat(arg)
        except OSError:
            skipped[shown] = f"Cannot read {shown}: it does not exist; check the path and try again."
            continue
        typed = arg.as_posix()
        relative = not arg.is_absolute() and ".." not in arg.parts
        if stat.S_ISDIR(info.st_mode):
            root = Path(os.path.abspath(arg))
            prefix = (source_name(typed) if typed not in (".", "") else "") if relative else root.name
            files = list(_walk(root))
            if not files:
                skipped[shown] = (f"{shown} holds no supported files; the coach reads "
                                  f"{', '.join(SUPPORTED_SUFFIXES)}.")
            candidates = [(f, root, "/".join(p for p in (prefix, f.relative_to(root).as_posix()) if p))
                          for f in files]
        else:
            absolute = Path(os.path.abspath(arg))
            candidates = [(absolute, absolute.parent, source_name(typed) if relative else absolute.name)]
        for file, inside, name in candidates:
            problem = _unsafe(file, inside)
            if problem:
                skipped[display(name)] = f"{display(name)} {problem}; skipped."
            elif name not in seen:
                seen.add(name)
                found.append(Found(file, name))
    return found, skipped


def _walk(root: Path):
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if not f.startswith(".") and Path(f).suffix.lower() in SUPPORTED_SUFFIXES:
                yield Path(folder) / f


def _unsafe(file: Path, inside: Path) -> str | None:
    """Why ``file`` must not be read, or None: a link leading outside ``inside``, or not a regular file."""
    try:
        if file.is_symlink():
            target = file.resolve(strict=True)
            if not target.is_relative_to(inside.resolve()):
                return "is a link leading outside the folder given"
        mode = os.stat(file).st_mode
    except (OSError, RuntimeError):
        return "cannot be read (a broken link or no permission)"
    if stat.S_ISDIR(mode):
        return "is a folder"
    if not stat.S_ISREG(mode):
        return "is not a regular file (a device, pipe or socket)"
    return None


@contextmanager
def deadline(seconds: float, name: str):
    """Raise IngestError when reading takes longer than ``seconds`` (a timer signal in the main
    thread; elsewhere only the readers' own checks of ``MAX_*`` apply)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expired(signum, frame):
        raise IngestError(f"{name} took over {seconds:g} seconds to read; split it into smaller files.")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _size(n: int) -> str:
    for unit, factor in (("MB", 2**20), ("KB", 2**10)):
        if n >= factor:
            return f"{n / factor:.3g} {unit}"
    return f"{n} bytes"
