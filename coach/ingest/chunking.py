"""Chinese-aware chunking: each section's body is cut into pieces of at most ``max_chars``.

Design: langchain's ``RecursiveCharacterTextSplitter`` tries paragraph,
line, then sentence ends (Chinese "。！？；" before ASCII "!?;" and ". "),
then clause commas, spaces and finally single characters, and keeps each
separator at the *end* of the piece before it. A piece therefore ends at a
sentence end whenever the text has one within ``max_chars``, and the
overlap carried into the next piece is made of whole sentences too. Every
piece of a section keeps the section's title and kind, so the many chunks of
one long answer all point back to its question.

A piece with fewer than ``MIN_MEANINGFUL`` meaningful characters (CJK
characters and English words, as ``coach.text.meaningful_length`` counts
them) is dropped as a fragment, except the whole short answer of a titled
section: "2次" under its question is an answer, not a fragment. A question
without any answer is kept, its own text standing as the body, so that
practice questions still reach the index.

Compromise: ". " (English sentence end) is an extra separator beyond the
Chinese list; a bare "." is not one, since it also sits in decimals,
versions and file names.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..text import meaningful_length
from .qa import Section

SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", "!", "?", ";", ". ", "，", ",", " ", ""]
MIN_MEANINGFUL = 10


@dataclass(frozen=True)
class Piece:
    title: str
    text: str
    kind: str


@lru_cache(maxsize=8)
def _splitter(max_chars: int, overlap: int):
    # Imported here: langchain pulls in pydantic, too slow for `import coach.ingest`.
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(
        chunk_size=max_chars, chunk_overlap=overlap, separators=SEPARATORS,
        keep_separator="end", strip_whitespace=True, length_function=len,
    )


def split_body(body: str, *, max_chars: int = 600, overlap: int = 80) -> list[str]:
    """``body`` in pieces of at most ``max_chars`` characters, cut at the latest sentence end that fits."""
    if max_chars < 1 or overlap < 0:
        raise ValueError(f"need max_chars >= 1 and overlap >= 0, got {max_chars}, {overlap}")
    if len(body) <= max_chars:
        return [body] if body else []
    # A small max_chars with the default overlap is a natural call; the splitter needs overlap < size.
    overlap = min(overlap, max_chars // 2)
    return [p for p in _splitter(max_chars, overlap).split_text(body) if p]


def chunk_sections(sections: list[Section], *, max_chars: int = 600, overlap: int = 80) -> list[Piece]:
    """All pieces of all sections, in order, fragments dropped."""
    pieces: list[Piece] = []
    for section in sections:
        pieces += _section_pieces(section, max_chars, overlap)
    return pieces


def _section_pieces(section: Section, max_chars: int, overlap: int) -> list[Piece]:
    answered = bool(section.body)
    if not answered and section.kind != "qa":
        return []  # a bare heading ("# 面试笔记") is structure, not content
    # An unanswered question stands for itself.
    texts = split_body(section.body if answered else section.title, max_chars=max_chars, overlap=overlap)
    whole_short_answer = answered and bool(section.title) and len(texts) == 1
    return [
        Piece(section.title, text, section.kind)
        for text in texts
        if whole_short_answer or meaningful_length(text) >= MIN_MEANINGFUL
    ]
