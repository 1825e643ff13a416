"""The domain glossary: one concept, every name people use for it.

Interview text mixes "BN", "批归一化", "批标准化" and "Batch Normalization"
for one idea. Retrieval and grading look names up here on both sides, query
and document, so each of them finds the others:

- ``concepts(text)`` lists the concept ids a text mentions;
- ``expand(text)`` appends the canonical Chinese and English names of those
  concepts, which is what the dense embedder sees;
- ``mentions(term, text)`` says whether a text contains a term or any other
  name of the term's concept (grading uses it for key-point terms).

Matching runs on ``text.compact`` forms by first-character buckets, so a scan
costs one dict lookup a character instead of one regex per name. A short
ASCII name (BN, CNN) must stand apart from other letters, so "RCNN" does not
mention CNN.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

from .config import load_yaml
from .errors import BankError
from .text import compact, normalize

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,60}$")
_ALNUM = re.compile(r"[a-z0-9]")
_SEPARATORS = re.compile(r"[\s\-_·]+")  # what ``text.compact`` drops


@dataclass(frozen=True)
class Concept:
    id: str
    zh: tuple[str, ...]
    en: str
    abbr: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.zh, self.en, *self.abbr)

    @property
    def label(self) -> str:
        """"批归一化 (Batch Normalization, BN)" — for expansions and display."""
        extra = ", ".join(x for x in (self.en, *self.abbr[:1]) if x)
        return f"{self.zh[0]} ({extra})" if extra else self.zh[0]


class Glossary:
    def __init__(self, concepts: list[Concept]):
        self.concepts = {c.id: c for c in concepts}
        self._by_form: dict[str, str] = {}
        for concept in concepts:
            for name in concept.names:
                form = compact(name)
                if form and len(form) >= 2:
                    self._by_form.setdefault(form, concept.id)
        # every form has two or more characters, so its first two pick a short list to try
        self._buckets: dict[str, list[str]] = {}
        for form in sorted(self._by_form, key=len, reverse=True):
            self._buckets.setdefault(form[:2], []).append(form)

    @classmethod
    def load(cls, path: Path) -> "Glossary":
        if not path.exists():
            return cls([])
        try:
            raw = load_yaml(path.read_text(encoding="utf-8")) or []
        except yaml.YAMLError as exc:
            raise BankError(f"{path.name} is not valid YAML ({exc.problem}); fix the file and retry.") from None
        return cls([_concept(entry, path.name, i) for i, entry in enumerate(raw)])

    @cached_property
    def tokenizer(self):
        """A jieba tokenizer that keeps this glossary's names whole ("批归一化"), its own (text.new_tokenizer)."""
        from .text import new_tokenizer

        return new_tokenizer(self.names)

    @cached_property
    def names(self) -> list[str]:
        return [name for c in self.concepts.values() for name in c.names if name]

    def _scan(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, concept id) of every longest name match in ``compact(text)``."""
        s, gaps = compact_with_gaps(text)
        found, i = [], 0
        while i < len(s):
            for form in self._buckets.get(s[i:i + 2], ()):
                if s.startswith(form, i) and _stands_apart(s, i, i + len(form), gaps):
                    found.append((i, i + len(form), self._by_form[form]))
                    i += len(form) - 1
                    break
            i += 1
        return found

    def concepts_in(self, text: str) -> list[str]:
        """Concept ids mentioned in ``text``, in order of first mention, once each."""
        return list(dict.fromkeys(cid for _, _, cid in self._scan(text)))

    def concept_of(self, term: str) -> str | None:
        return self._by_form.get(compact(term))

    def expand(self, text: str) -> str:
        """``text`` plus the labels of the concepts it names, for the dense embedder."""
        labels = [self.concepts[cid].label for cid in self.concepts_in(text)]
        return f"{text}\n({'; '.join(labels)})" if labels else text

    def mentions(self, term: str, text: str, text_concepts: set[str] | None = None) -> bool:
        """True when ``text`` contains ``term`` or another name of its concept."""
        form = compact(term)
        if not form:
            return False
        cid = self._by_form.get(form)
        if cid is not None:
            concepts = text_concepts if text_concepts is not None else set(self.concepts_in(text))
            if cid in concepts:
                return True
        s, gaps = compact_with_gaps(text)
        start = s.find(form)
        while start >= 0:
            if _stands_apart(s, start, start + len(form), gaps):
                return True
            start = s.find(form, start + 1)
        return False


def compact_with_gaps(text: str) -> tuple[str, frozenset[int]]:
    """``compact(text)`` and the positions in it where a space or hyphen was dropped.

    >>> compact_with_gaps("How does LoRA work")
    ('howdoeslorawork', frozenset({3, 7, 11}))
    """
    parts = _SEPARATORS.split(normalize(text))
    out, gaps, n = [], set(), 0
    for part in parts:
        if out:
            gaps.add(n)
        out.append(part)
        n += len(part)
    return "".join(out), frozenset(gaps)


def _stands_apart(s: str, start: int, end: int, gaps: frozenset[int] = frozenset()) -> bool:
    """A short ASCII name must not be glued to other letters: CNN in 'rcnn' is no match,
    LoRA in "how does lora work" is (a dropped space counts as a boundary)."""
    if end - start > 4 or not _ALNUM.match(s[start]):
        return True
    before = start == 0 or start in gaps or not _ALNUM.match(s[start - 1])
    after = end >= len(s) or end in gaps or not _ALNUM.match(s[end])
    return before and after


def _concept(entry, file: str, index: int) -> Concept:
    where = f"{file} entry {index + 1}"
    if not isinstance(entry, dict):
        raise BankError(f"{where} is not a mapping; write it as id/zh/en/abbr fields.")
    cid = str(entry.get("id", ""))
    if not _ID.match(cid):
        raise BankError(f"{where} has a bad id {cid!r}; use lowercase letters, digits and '-'.")
    zh = entry.get("zh") or []
    if isinstance(zh, str):
        zh = [zh]
    abbr = entry.get("abbr") or []
    if isinstance(abbr, str):
        abbr = [abbr]
    en = str(entry.get("en") or "")
    if not zh and not en:
        raise BankError(f"{where} ({cid}) has neither a Chinese nor an English name; add one.")
    return Concept(cid, tuple(str(z) for z in zh) or (en,), en, tuple(str(a) for a in abbr))
