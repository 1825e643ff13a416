"""Text normalisation, sentence splitting and tokenisation for Chinese and English.

One normal form serves matching everywhere (BM25, glossary, grading):
NFKC (full-width letters and digits become ASCII), lower case. ``compact``
also drops spaces, hyphens and underscores so that "Batch Norm", "batch-norm"
and "batchnorm" compare equal, which copy-pasted web text needs (it often
loses its spaces: "sparseinteraction").
"""

from __future__ import annotations

import logging
import re
import unicodedata
from functools import lru_cache

from .config import RESOURCES

_SENTENCE_END = re.compile(r"(?<=[。！？!?；;\n])|(?<=\.)\s+(?=[A-Z\u4e00-\u9fff])")
_COMPACT_DROP = re.compile(r"[\s\-_·]+")
_WORD = re.compile(r"[0-9a-z\u4e00-\u9fff\u3400-\u4dbf]")


def normalize(text: str) -> str:
    """NFKC and lower case: ``normalize("ＢＮ层") == "bn层"``."""
    return unicodedata.normalize("NFKC", text).lower()


def compact(text: str) -> str:
    """Normal form without spaces or hyphens: ``compact("Batch-Norm 层") == "batchnorm层"``."""
    return _COMPACT_DROP.sub("", normalize(text))


def split_sentences(text: str) -> list[str]:
    """Split at Chinese and English sentence ends and line breaks.

    >>> split_sentences("BN有两个作用。一是加速收敛！Second, it regularizes.")
    ['BN有两个作用。', '一是加速收敛！', 'Second, it regularizes.']
    """
    parts = (p.strip() for p in _SENTENCE_END.split(text or ""))
    return [p for p in parts if p and _WORD.search(normalize(p))]


def meaningful_length(text: str) -> int:
    """Characters that carry content: CJK characters count one, an English word counts one."""
    norm = normalize(text)
    cjk = len(re.findall(r"[\u4e00-\u9fff\u3400-\u4dbf]", norm))
    words = len(re.findall(r"[a-z0-9]+", norm))
    return cjk + words


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    lines = (RESOURCES / "stopwords.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip() for w in lines if w.strip() and not w.startswith("#"))


def new_tokenizer(words=()):
    """A jieba tokenizer of its own that keeps ``words`` (a glossary's names) whole.

    One per glossary (``Glossary.tokenizer``), never jieba's global one: a process that loads
    two glossaries (the tests, the benchmarks) must not tokenise one bank with the other's
    words, which silently changed what a query matched."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    for word in words:
        if len(word) >= 2:
            tokenizer.add_word(normalize(word), freq=2000)
    return tokenizer


_LATIN_RUN = re.compile(r"[a-z0-9][a-z0-9+#]*(?:[-.][a-z0-9+#]+)*")


def tokenize(text: str, tokenizer) -> list[str]:
    """BM25 tokens: Latin-script words whole, jieba search-mode words for the rest, without
    stopwords and punctuation. Latin words go around jieba, which would cut "memory" into
    "m", "em", "ory" because its dictionary knows "em".

    >>> tokenize("BN层为什么要加γ和β? memory savings", glossary.tokenizer)  # doctest: +SKIP
    ['bn', '层', '要加', 'γ', 'β', 'memory', 'savings']

    ``tokenizer``: the glossary's (``Glossary.tokenizer``), which keeps its names whole.
    """
    stop, jieba, words = stopwords(), tokenizer, []
    norm = normalize(text)
    start = 0
    for m in _LATIN_RUN.finditer(norm):
        words += jieba.lcut_for_search(norm[start:m.start()])
        words.append(m.group(0))
        start = m.end()
    words += jieba.lcut_for_search(norm[start:])
    return [w for w in (w.strip() for w in words) if w and w not in stop and not _is_punct(w)]


def _is_punct(word: str) -> bool:
    return all(unicodedata.category(ch)[0] in "PSZC" and ch not in "γβαλσμ" for ch in word)
