"""Reading a typo in a query the way a person would: 过你和 is 过拟合, LSMT is LSTM.

Candidates type with a pinyin input method, so a Chinese typo is usually a homophone: the
right syllables, the wrong characters (过你和, 张亮并行, 余玄相似度). A Latin typo is usually one
slip: a swapped, missing, extra or wrong letter (LSMT, word2vce, checkpiont, repitition).

- **Chinese.** A run of 3-8 characters is read as a glossary name when it sounds the same
  (the typed characters' usual readings against any reading of the name's), differs in at
  most two characters, is itself no word (not a glossary name, not in jieba's dictionary),
  and breaks the sentence's words: jieba reads at least two of its characters alone. So 实例
  and 交叉上 are left as typed, and only names the bank knows are ever suggested.
- **Latin.** A word of 4 or more letters (no digits) that no unit of the index and no
  glossary name uses is read as the one glossary word one edit away (a swapped, missing,
  extra or wrong letter, never the first), if it has 5 letters or more; an acronym only with
  two letters swapped, and a CamelCase name (GraphSAGE) not at all. When two glossary words
  are equally near, it is left alone.

The pinyin table is a data file (``resources/pinyin.txt``, from pypinyin's data), so no
dependency is loaded to read a query. ``correct`` returns the query with its typos replaced
and the pairs it replaced; a query with none comes back unchanged.
"""

from __future__ import annotations

import re
from functools import cached_property, lru_cache

from .config import RESOURCES

_CJK_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")
_LATIN = re.compile(r"(?<![A-Za-z0-9_])[A-Za-z]{4,}(?![A-Za-z0-9_])")
_LATIN_VOCAB = re.compile(r"[A-Za-z][A-Za-z0-9]+")
MIN_WORD = 5  # letters a (non-acronym) Latin word needs before it is read as a typo
MIN_NAME, MAX_NAME = 3, 8  # two characters are too short to guess from (权值 is not 卷积)
MAX_CHANGED = 2


@lru_cache(maxsize=1)
def readings() -> dict[str, frozenset[str]]:
    out = {}
    for line in (RESOURCES / "pinyin.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            char, _, sounds = line.partition("\t")
            out[char] = frozenset(sounds.split(","))
    return out


@lru_cache(maxsize=1)
def primary_readings() -> dict[str, str]:
    out = {}
    for line in (RESOURCES / "pinyin.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            char, _, sounds = line.partition("\t")
            out[char] = sounds.split(",")[0]
    return out


class Speller:
    """Typo reading for one glossary and one index's vocabulary (built once per retriever)."""

    def __init__(self, glossary, texts: list[str]):
        self.tokenizer = glossary.tokenizer
        self._read = lru_cache(maxsize=2048)(self._read_text)  # this speller's own cache, gone with it
        self.sounds = readings()
        # a typed character stands for its usual reading (the first listed): 和 is he, never huo
        self.primary = primary_readings()
        self.names: dict[tuple[int, str], list[str]] = {}  # (length, a reading of the first char) -> names
        known_names = set()
        for name in glossary.names:
            if _CJK_RUN.fullmatch(name) and len(name) <= MAX_NAME and all(c in self.sounds for c in name):
                known_names.add(name)
                for first in self.sounds[name[0]]:
                    self.names.setdefault((len(name), first), []).append(name)
        self.known_names = known_names
        terms = {w.lower() for name in glossary.names for w in _LATIN_VOCAB.findall(name)}
        self.vocab = terms | {w.lower() for text in texts for w in _LATIN_VOCAB.findall(text)}  # known words
        self.terms = {w for w in terms if w.isalpha() and len(w) >= 3}  # what a typo may be read as

    @cached_property
    def deletes(self) -> dict[str, set[str]]:
        """A symmetric-delete index (SymSpell): two words within k edits share a k-deletion, so a
        typo's candidates are found by lookup, not by comparing it with every known word. Built
        on the first unknown Latin word (about 0.15 s for the bank), not with the retriever."""
        out: dict[str, set[str]] = {}
        for word in self.terms:
            for variant in _deletions(word, 1):
                out.setdefault(variant, set()).add(word)
        return out

    def correct(self, query: str) -> tuple[str, list[tuple[str, str]]]:
        """The query read, and the (typed, read) pairs; the same query is read once (chat, its lookup
        and the query vectors each ask)."""
        read, fixes = self._read(query)
        return read, list(fixes)

    def _read_text(self, query: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        fixes: list[tuple[str, str]] = []
        out = _CJK_RUN.sub(lambda m: self._chinese(m.group(0), fixes), query)
        out = _LATIN.sub(lambda m: self._latin(m.group(0), fixes), out)
        return out, tuple(fixes)

    # ---- Chinese: homophones of glossary names ----------------------------------------------
    def _chinese(self, run: str, fixes: list) -> str:
        singles = None  # jieba's reading of the run, only once a window sounds like a name
        out, i = [], 0
        while i < len(run):
            for size in range(min(MAX_NAME, len(run) - i), MIN_NAME - 1, -1):
                window = run[i:i + size]
                name = self._homophone(window)
                if name and singles is None:
                    singles = _single_characters(run, self.tokenizer)
                # a typo breaks the words it is in: jieba reads two or more of its characters alone
                # (过/你/和, 灾难性/遗/往), where "交叉上" is a word and a particle, not a broken 交叉熵
                if name and sum(singles[i:i + size]) >= 2:
                    out.append(name)
                    fixes.append((window, name))
                    i += size
                    break
            else:
                out.append(run[i])
                i += 1
        return "".join(out)

    def _homophone(self, window: str) -> str | None:
        if window in self.known_names or (self.tokenizer.FREQ.get(window) or 0) > 0 or window[0] not in self.sounds:
            return None
        found = None
        for name in self.names.get((len(window), self.primary.get(window[0])), ()):
            changed = sum(a != b for a, b in zip(window, name))
            if 0 < changed <= MAX_CHANGED and all(self.primary.get(a) in self.sounds[b] for a, b in zip(window, name)):
                if found is not None and found != name:
                    return None  # two names sound alike: not a guess to make
                found = name
        return found

    # ---- Latin: one slip from a known word ------------------------------------------------------
    def _latin(self, word: str, fixes: list) -> str:
        low = word.lower()
        if low in self.vocab or (not word.isupper() and any(c.isupper() for c in word[1:])):
            return word  # known, or a CamelCase name (GraphSAGE, DeepAR): a name the bank lacks, not a slip
        limit = 1
        candidates = set().union(*(self.deletes.get(v, ()) for v in _deletions(low, limit)))
        # people rarely slip on the first letter (capping is not mapping); a short word has too many
        # neighbours to guess from (less is not loss); an acronym is read only with two letters swapped
        # (LSMT), never with one more, less or other (PLDA, SRCNN, VITS and SLAM are other names)
        candidates = {c for c in candidates if c[0] == low[0]}
        if word.isupper():
            candidates = {c for c in candidates if sorted(c) == sorted(low)}
        elif len(low) < MIN_WORD:
            return word
        best, best_distance, tie = None, limit + 1, False
        for known in sorted(candidates):
            d = _distance(low, known, limit + 1)  # exact below limit + 1
            if d < best_distance:
                best, best_distance, tie = known, d, False
            elif d == best_distance and d <= limit:
                tie = True
        if best is None or tie:
            return word
        fixed = best.upper() if word.isupper() else best
        fixes.append((word, fixed))
        return fixed


def _deletions(word: str, depth: int) -> set[str]:
    """``word`` and every string made from it by deleting up to ``depth`` letters."""
    out, frontier = {word}, {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1:] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


def _single_characters(run: str, tokenizer) -> list[bool]:
    """Per character of ``run``: does jieba read it as a word of its own?"""
    out = []
    for token in tokenizer.lcut(run, HMM=False):
        out += [len(token) == 1] * len(token)
    return out


def _distance(a: str, b: str, cap: int) -> int:
    """Damerau-Levenshtein distance (adjacent swaps count one), or ``cap`` once it is reached."""
    if abs(len(a) - len(b)) >= cap:
        return cap
    prev2, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if prev2 is not None and i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) >= cap:
            return cap
        prev2, prev = prev, cur
    return min(prev[-1], cap)
