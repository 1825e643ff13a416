"""The question bank: items written to the schema in ``corpus/README.md``.

Loading validates every item and stops at the first problem with a message
that names the file and the item, because a bank that half-loads would make
the index, the grades and the interview silently disagree. ``check`` goes
further (follow-ups that exist, near-duplicate questions) for ``coach bank
check``; ``stats`` counts items per topic and difficulty.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from .config import load_yaml
from .errors import BankError
from .glossary import Glossary
from .text import compact

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,59}$")


@dataclass(frozen=True)
class KeyPoint:
    point: str
    terms: tuple[tuple[str, ...], ...]  # groups of alternatives
    weight: int


@dataclass(frozen=True)
class Misconception:
    claim: str
    signals: tuple[tuple[str, ...], ...]
    correction: str
    kind: str = "claim"  # "claim": a wrong belief; "swap": two definitions exchanged (signals in order)


@dataclass(frozen=True)
class BankItem:
    id: str
    topic: str
    difficulty: int
    question: str  # Chinese
    question_en: str
    asks: tuple[str, ...]
    key_points: tuple[KeyPoint, ...]
    answer: str
    misconceptions: tuple[Misconception, ...]
    follow_ups: tuple[str, ...]
    tags: tuple[str, ...]
    file: str
    format: str = "concept"  # concept, calculation, design or coding (see FORMATS)
    code: str = ""  # reference code of a coding item (shown with the model answer)

    @property
    def all_questions(self) -> list[str]:
        return [self.question, self.question_en, *self.asks]


@dataclass(frozen=True)
class Topic:
    id: str
    zh: str
    en: str


@dataclass
class Bank:
    items: dict[str, BankItem]
    topics: dict[str, Topic]
    glossary: Glossary
    digest: str  # sha256 of the bank and topic files, to tell when the index is stale
    glossary_digest: str  # sha256 of the glossary: a change re-embeds everything

    @classmethod
    def load(cls, corpus_dir: Path) -> "Bank":
        corpus_dir = Path(corpus_dir)
        files = sorted((corpus_dir / "bank").glob("*.yaml"))
        if not files:
            raise BankError(f"No question bank found in {corpus_dir / 'bank'}; check COACH_CORPUS or the checkout.")
        topics = _load_topics(corpus_dir / "topics.yaml")
        items: dict[str, BankItem] = {}
        for path in files:
            for item in _load_file(path, topics):
                if item.id in items:
                    raise BankError(f"{path.name}: item id {item.id!r} is also used in {items[item.id].file}; make ids unique.")
                items[item.id] = item
        glossary = Glossary.load(corpus_dir / "glossary.yaml")
        digest = _digest([corpus_dir / "topics.yaml", *files])
        return cls(items, topics, glossary, digest, _digest([corpus_dir / "glossary.yaml"]))

    def get(self, item_id: str) -> BankItem:
        try:
            return self.items[item_id]
        except KeyError:
            raise BankError(f"No bank item has the id {item_id!r}; `coach bank list` shows the ids.") from None

    def by_topic(self, topic: str) -> list[BankItem]:
        return [i for i in self.items.values() if i.topic == topic]

    def check(self, distinct: list[tuple[str, str]] = ()) -> list[str]:
        """Problems beyond the schema: dangling follow-ups, near-duplicate questions, single-character
        terms, and glossary names merged into one concept that ``distinct`` says differ."""
        problems = [
            f"{item.file}: {item.id} follows up with {f!r}, which does not exist"
            for item in self.items.values() for f in item.follow_ups if f not in self.items
        ]
        problems += _single_characters(list(self.items.values()))
        problems += [f"glossary.yaml: {a!r} and {b!r} are different concepts but share the concept "
                     f"{self.glossary.concept_of(a)!r}; split them" for a, b in distinct
                     if self.glossary.concept_of(a) and self.glossary.concept_of(a) == self.glossary.concept_of(b)]
        return problems + _near_duplicates(list(self.items.values()))

    def stats(self) -> dict[str, Counter]:
        """``{topic: Counter({difficulty: count})}`` in topic display order."""
        out = {t: Counter() for t in self.topics}
        for item in self.items.values():
            out[item.topic][item.difficulty] += 1
        return out


_SINGLE = re.compile(r"^(?:[\u4e00-\u9fff]|[A-Za-z])$")


def _single_characters(items: list[BankItem]) -> list[str]:
    """Terms and signals of one Chinese character or one Latin letter match inside other words
    (值 in 阈值, 行 in 并行): each must be a word of two or more characters (Greek letters may stand alone)."""
    out = []
    for item in items:
        groups = [g for kp in item.key_points for g in kp.terms] + [g for m in item.misconceptions for g in m.signals]
        for alt in sorted({a for g in groups for a in g if _SINGLE.match(a)}):
            out.append(f"{item.file}: {item.id} has the one-character term {alt!r}; use a word of two or more characters")
    return out


def load_distinct(corpus_dir: Path) -> list[tuple[str, str]]:
    """``glossary_distinct.yaml``: reviewed pairs of names that must stay different concepts."""
    path = Path(corpus_dir) / "glossary_distinct.yaml"
    raw = _read_yaml(path) if path.exists() else []
    return [(str(a), str(b)) for a, b in (raw or [])]


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        if p.exists():
            h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _read_yaml(path: Path):
    try:
        return load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise BankError(f"{path.name} is not valid YAML{line}; fix the file and run `coach bank check`.") from None


def _load_topics(path: Path) -> dict[str, Topic]:
    raw = _read_yaml(path) if path.exists() else None
    if not isinstance(raw, list) or not raw:
        raise BankError(f"{path.name} is missing or empty; it must list the topics with id, zh and en.")
    return {str(t["id"]): Topic(str(t["id"]), str(t.get("zh", t["id"])), str(t.get("en", t["id"]))) for t in raw}


def _load_file(path: Path, topics: dict[str, Topic]) -> list[BankItem]:
    raw = _read_yaml(path)
    if not isinstance(raw, dict) or "items" not in raw:
        raise BankError(f"{path.name} must be a mapping with 'topic' and 'items'; see corpus/README.md.")
    topic = str(raw.get("topic", ""))
    if topic not in topics:
        raise BankError(f"{path.name}: topic {topic!r} is not listed in topics.yaml; add it there or fix the name.")
    return [_item(entry, topic, path.name, n) for n, entry in enumerate(raw["items"] or [], 1)]


class _Where:
    """Builds error messages that name the file and the item."""

    def __init__(self, file: str, item: str):
        self.file, self.item = file, item

    def fail(self, what: str):
        raise BankError(f"{self.file}, item {self.item}: {what}; see corpus/README.md for the schema.")


FORMATS = ("concept", "calculation", "design", "coding")


def _item(entry, topic: str, file: str, n: int) -> BankItem:
    if not isinstance(entry, dict):
        _Where(file, f"#{n}").fail("is not a mapping")
    where = _Where(file, str(entry.get("id") or f"#{n}"))
    item_id = str(entry.get("id", ""))
    if not _ID.match(item_id):
        where.fail("id must be 3-60 lowercase letters, digits or '-'")
    difficulty = entry.get("difficulty")
    if difficulty not in (1, 2, 3):
        where.fail("difficulty must be 1, 2 or 3")
    question = entry.get("question") or {}
    if not isinstance(question, dict) or not _text(question.get("zh")) or not _text(question.get("en")):
        where.fail("question needs both zh and en")
    asks = _strings(entry.get("asks"))
    if len(asks) < 2:
        where.fail("asks needs at least two other ways to ask the question")
    points = [_key_point(kp, where) for kp in entry.get("key_points") or []]
    if not 3 <= len(points) <= 6:
        where.fail(f"key_points must have 3 to 6 points, not {len(points)}")
    answer = _text(entry.get("answer"))
    if len(answer) < 40:
        where.fail("answer (the reference answer) is missing or shorter than 40 characters")
    fmt = _text(entry.get("format")) or "concept"
    if fmt not in FORMATS:
        where.fail(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    code = str(entry.get("code") or "").strip("\n")
    if fmt == "coding" and not code.strip():
        where.fail("a coding item needs its reference code in 'code'")
    return BankItem(
        format=fmt, code=code,
        id=item_id, topic=topic, difficulty=difficulty,
        question=_text(question["zh"]), question_en=_text(question["en"]), asks=tuple(asks),
        key_points=tuple(points), answer=answer,
        misconceptions=tuple(_misconception(m, where) for m in entry.get("misconceptions") or []),
        follow_ups=tuple(_strings(entry.get("follow_ups"))), tags=tuple(_strings(entry.get("tags"))), file=file,
    )


def _key_point(raw, where: _Where) -> KeyPoint:
    if not isinstance(raw, dict) or not _text(raw.get("point")):
        where.fail("every key point needs a 'point' sentence")
    weight = raw.get("weight", 1)
    if weight not in (1, 2, 3):
        where.fail(f"key point {raw['point'][:20]!r} has weight {weight!r}; use 1, 2 or 3")
    terms = _groups(raw.get("terms"))
    if not terms:
        where.fail(f"key point {raw['point'][:20]!r} needs at least one term group")
    return KeyPoint(_text(raw["point"]), terms, weight)


def _misconception(raw, where: _Where) -> Misconception:
    if not isinstance(raw, dict) or not _text(raw.get("claim")) or not _text(raw.get("correction")):
        where.fail("every misconception needs 'claim' and 'correction'")
    kind = str(raw.get("kind") or "claim")
    if kind not in ("claim", "swap"):
        where.fail(f"misconception kind {kind!r} is not claim or swap")
    return Misconception(_text(raw["claim"]), _groups(raw.get("signals")), _text(raw["correction"]), kind)


def _groups(raw) -> tuple[tuple[str, ...], ...]:
    groups = []
    for group in _strings(raw):
        alts = tuple(a.strip() for a in group.split("|") if a.strip())
        if alts:
            groups.append(alts)
    return tuple(groups)


def _strings(raw) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, (str, int, float)):
        raw = [raw]
    return [str(x).strip() for x in raw if str(x).strip()]


def _text(raw) -> str:
    return str(raw).strip() if raw is not None else ""


def _bigrams(text: str) -> set[str]:
    s = compact(text)
    return {s[i:i + 2] for i in range(len(s) - 1)}


def _near_duplicates(items: list[BankItem]) -> list[str]:
    """Pairs whose Chinese questions share most of their character bigrams.

    Jaccard catches long rewordings; the overlap coefficient catches a short
    question repeated inside another ("BN的作用?" / "BN的作用是什么呢?").
    """
    grams = [(_bigrams(i.question), i) for i in items]
    out = []
    for a in range(len(grams)):
        for b in range(a + 1, len(grams)):
            ga, gb = grams[a][0], grams[b][0]
            if not ga or not gb:
                continue
            shared = len(ga & gb)
            if shared / len(ga | gb) >= 0.7 or shared / min(len(ga), len(gb)) >= 0.9:
                out.append(f"{grams[a][1].id} and {grams[b][1].id} ask nearly the same question")
    return out
