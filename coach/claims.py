"""What a sentence claims, not only which words it uses: negation and order.

Matching words is not reading a claim. "AUC与阈值无关" names AUC and 阈值 as
"AUC会随阈值变化" does, and says the opposite; "two-stage更快" uses the words of
"one-stage更快" in the other order. The grader asks three questions here:

- ``polarity(text)``: is the statement negated (a negation cue: 不/没/无/非/
  未/并非/not ..., minus words that only look negative such as 不同, 非线性,
  无论, and double negatives)? A claim and a sentence agree only with equal
  polarity.
- ``claim_span(sentence, groups)``: the shortest run of clauses that names
  every signal group of a misconception; its polarity is compared with the
  claim's, so "推理时不需要dropout" never raises "推理时也要随机丢弃".
- ``in_order(clause, groups)``: the groups appear in this order within one
  clause; a ``swap`` misconception ("two-stage ... 更快") is raised that way.
- ``negated_terms(text, groups)``: which term groups a text names right after
  a negation cue ("LSTM没有遗忘门"); a key point is not covered by a sentence
  that negates the point's own terms.

Compromise: these are surface rules for short interview sentences; a double
negative spread over two clauses or irony is beyond them.
"""

from __future__ import annotations

import re

from .text import normalize

# Negation cues, and words that contain one but negate nothing.
_CUE = re.compile(r"并非|并不|并没有|不是|没有|不|没|无|非|未|别(?![的人])|\bnot\b|n't|\bno\b|\bnever\b|\bneither\b|\bnor\b|\bwithout\b")
_NOT_NEGATION = re.compile(
    r"不同|不断|不少|不错|不仅|不过|不久|不管|不光|不外乎|不得不|不定|不变|不平衡|不均衡|不确定|差不多|"
    r"(.)不\1|判别|识别|区别|类别|差别|分别|级别|告别|个别|"
    r"无论|无穷|无限|无监督|无偏|无分类器|无锚|无标注|无标签|非线性|非常|非凸|非零|非负|非结构化|非对称|"
    r"除非|未来|未知|未观测|没有免费午餐|"
    r"\bno matter\b|\bnot only\b")
_CLAUSE_END = re.compile(r"[,，;；。！？!?\n]|(?<=[a-z])\.\s")
_NEAR = 4  # a cue this many characters before a term negates it ("没有遗忘门", "不会饱和")


_OPPOSITE_PREFIX = "非无半"  # "非结构化" is another term than "结构化", not its denial


_DOUBLE = re.compile(r"不是不|并非不|没有不|不可能不|不会不|无不")


def polarity(text: str) -> int:
    """1 when a clause of ``text`` is negated (a negation cue in it, not a double negative), else 0.

    >>> polarity("KL散度不满足对称性"), polarity("KL散度是对称的"), polarity("AUC与阈值无关,不会随阈值变化")
    (1, 0, 1)
    """
    def negated(clause: str) -> bool:
        norm = normalize(clause)
        return not _DOUBLE.search(norm) and bool(_CUE.search(_NOT_NEGATION.sub(" ", norm)))
    return int(any(negated(c) for c in clauses(text) or [text]))


def clauses(sentence: str) -> list[str]:
    return [c for c in _CLAUSE_END.split(sentence) if c.strip()]


def _find(group: tuple[str, ...], text: str, glossary, start: int = 0) -> tuple[int, int] | None:
    """(start, end) of the first alternative of ``group`` in ``text`` at or after ``start``."""
    low, best = normalize(text), None
    for alt in group:
        names = [alt]
        cid = glossary.concept_of(alt) if glossary else None
        if cid:
            names += list(glossary.concepts[cid].names)
        for name in names:
            name = normalize(name)
            if not name:
                continue
            i = low.find(name, start)
            while i >= 0 and name.isascii() and name[:1].isalnum() and (
                    (i > 0 and low[i - 1].isalnum() and low[i - 1].isascii()) or
                    (i + len(name) < len(low) and low[i + len(name)].isalnum() and low[i + len(name)].isascii())):
                i = low.find(name, i + 1)  # "BN" must not match inside "RNN"
            while i > 0 and low[i - 1] in _OPPOSITE_PREFIX and name[:1] not in _OPPOSITE_PREFIX:
                i = low.find(name, i + 1)  # nor "结构化剪枝" inside "非结构化剪枝", "监督" inside "无监督"
            if i >= 0 and (best is None or i < best[0]):
                best = (i, i + len(name))
    return best


_CONTRAST = re.compile(r"^\s*(?:但|但是|可是|然而|其实|实际上|事实上|不过|however|but|actually)")
_REPORTED = re.compile(r"以为|认为|担心|觉得|误以为|常说|有人说|people think|believe")


def claim_span(sentence: str, groups, glossary) -> tuple[str, bool] | None:
    """The shortest run of consecutive clauses naming every group, and whether the next clause
    denies it as a reported belief ("以前大家担心X，但这个担心不成立"); None if no run names them all."""
    parts = clauses(sentence)
    for width in range(1, len(parts) + 1):
        for i in range(len(parts) - width + 1):
            span = "，".join(parts[i:i + width])
            if all(_find(g, span, glossary) for g in groups):
                after = parts[i + width] if i + width < len(parts) else ""
                return span, bool(_REPORTED.search(span) and _CONTRAST.search(after) and polarity(after))
    return None


def stated_polarity(sentence: str, groups, glossary) -> int | None:
    """The polarity a sentence gives the claim its groups name, or None when it names them not.

    A reported belief that the next clause denies ("很多人以为R²一定在0到1之间，其实不是")
    counts as the opposite of what the reporting clause says.
    """
    found = claim_span(sentence, groups, glossary)
    if found is None:
        return None
    span, denied = found
    return polarity(span) ^ int(denied)


def in_order(sentence: str, groups, glossary) -> str | None:
    """The clause in which the groups appear in the given order, or None.

    The first group must be the clause's subject, not the object of a comparison:
    "one-stage比two-stage更快" does not say that two-stage is faster.
    """
    for clause in clauses(sentence):
        at = 0
        for n, group in enumerate(groups):
            found = _find(group, clause, glossary, at)
            if found is None or (n == 0 and _COMPARED.search(normalize(clause)[max(0, found[0] - 3):found[0]])):
                break
            at = found[1]
        else:
            return clause
    return None


_COMPARED = re.compile(r"比|than|相比|不如")


_DENIAL = re.compile(r"(?:没有|不是|并非|不存在|无需|不需要|不含|不包括|\bno\b|\bnot\b|\bwithout\b)\s*$")


def negated_terms(text: str, groups, glossary) -> set[int]:
    """Indices of the term groups that ``text`` denies outright: "没有遗忘门", "不是超参数"."""
    out = set()
    for clause in clauses(text):
        low = normalize(clause)
        for k, group in enumerate(groups):
            found = _find(group, clause, glossary)
            if found and _DENIAL.search(low[max(0, found[0] - _NEAR):found[0]]):
                out.add(k)
    return out


def named_terms(text: str, groups, glossary) -> set[int]:
    return {k for k, g in enumerate(groups) if _find(g, text, glossary)}
