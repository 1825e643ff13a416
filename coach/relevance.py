"""Does this candidate answer this question? A calibrated probability.

Retrieval ranks; it does not decide. "LoRA的原理是什么?" and "朴素贝叶斯的原理
是什么?" share most of their words and much of their meaning, so the closest
bank item is not an answer just because it is closest. Each candidate (a bank
item, or a chunk of the user's documents) gets a ``relevance`` in [0, 1]: the
probability, fitted by logistic regression on a development set, that it
answers the query. The same number means the same thing for every query, so
one line (``ANSWER``) decides between "答案" and "可能相关".

The signals, all about the *question* a candidate answers:

- ``q_cos``: the best cosine between the query (raw or glossary-expanded) and
  the candidate's question in any phrasing (0 when it has no question);
- ``b_cos``: the cosine between the query and the candidate's body;
- ``q_cover``: how much of the query's content the candidate's question
  covers, each query term weighted by its rarity (IDF over all questions),
  glossary names folded into their concept ("BN" = "批归一化"). A term no
  question in the index has ever used ("LoRA") weighs the most, so an item
  that lacks it cannot look like an answer;
- ``q_back``: the other way round, how much of the candidate's closest
  phrasing the query asks for: "BN有什么用" asks for all of "BN的作用" but
  little of "BN层为什么要加γ和β", so the more specific item ranks lower;
- ``b_cover``: the same as ``q_cover`` against the body;
- ``missing``: how many of the query's *key* terms (glossary concepts and
  Latin-script names such as LoRA, RLHF, MoE, ConvLSTM) the candidate's
  question and tags do not name; ``missing_all``: how many its body does not
  name either;
- ``has_q``: whether the candidate has a question at all (a plain document
  section is matched on its body alone);
- ``gap``: how far the candidate's ``q_cos`` stands above the best of the
  other candidates of its kind: an answer usually stands out, while for a
  question nothing answers, several items are about equally (un)like it;
- ``unseen``: how much of the query (IDF-weighted) is terms no question in the
  index has ever used ("点云", "TransE"): a query about something the knowledge
  base never asks about, whatever candidate is nearest;
A document chunk has one short title (or none) and a long body, a bank item
eight phrasings and a curated answer, so the same cosine means different
things: each kind has its own weights (``KINDS``), fitted on its own
candidates, and so its own calibration.

The weights live in ``resources/relevance.json`` with the data they were
fitted on; ``coach eval abstain --fit`` refits them from the tuning half of
the development set and never sees the held-out half.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .config import RESOURCES
from .text import compact, tokenize

FEATURES = ("q_cos", "b_cos", "q_cover", "q_back", "b_cover", "missing", "missing_all", "has_q", "gap", "unseen")
KINDS = ("bank", "doc")  # each kind of candidate has its own weights: the same cosine means different things
FORMAT, VERSION = "coach-relevance", 2  # 2: one logistic model per kind; 1 had one model with doc_* features
ANSWER = 0.5  # a candidate at or above this is presented as the answer
RELATED = 0.12  # below this a candidate is not worth showing even as "可能相关"
PART = 0.8  # a clause alone is short and vague ("目标检测了解吗"): only a clear answer makes it a part
MAX_PARTS = 3  # a question that asks more things than this is answered on its first three
CLAUSES = re.compile(r"[,，;；?？。]")
ASKS = re.compile(r"什么|为什么|为啥|怎么|怎样|如何|哪些|哪个|是否|吗|呢|区别|作用|原理|思想|说一下|说说|讲一下|讲讲|介绍|"
                  r"\b(what|why|how|which|explain|describe|compare)\b", re.I)
# Latin words that carry no topic of their own in an interview question.
_GENERIC_LATIN = frozenset("""a an the of in on for to and or is are be what why how when which who does do did
can could should would vs versus with without between about explain describe difference differences
difference compare compared use used using work works working mean means it its this that these those
there their your you we i my me as at by from into than then so if not no yes model models layer layers
network networks deep learning machine ml dl ai method methods""".split())


@dataclass(frozen=True)
class RelevanceModel:
    """Per kind of candidate, a logistic model over ``FEATURES``: ``p = sigmoid(w . x + b)``.

    A bank item has eight phrasings and a curated answer; a document chunk one short title (or
    none) and a long body. Fitted apart, each kind's probability is calibrated on its own
    candidates, as the chat composes an answer from both lists.
    """

    weights: dict  # kind -> tuple of weights, in FEATURES order
    bias: dict  # kind -> float
    fitted_on: str = ""

    @classmethod
    def load(cls, path=None) -> "RelevanceModel":
        from .errors import CoachError

        path = path or RESOURCES / "relevance.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise CoachError(f"{path.name} is missing or not JSON; reinstall the coach or run `coach eval abstain --fit`.") from None
        models = data.get("models") if isinstance(data, dict) else None
        if (data.get("format") != FORMAT or data.get("version") != VERSION or tuple(data.get("features", ())) != FEATURES
                or not isinstance(models, dict) or set(models) != set(KINDS)
                or any(len(models[k].get("weights", ())) != len(FEATURES) for k in KINDS)):
            raise CoachError(f"{path.name} was written for other relevance features; run `coach eval abstain --fit`.")
        return cls({k: tuple(float(w) for w in models[k]["weights"]) for k in KINDS},
                   {k: float(models[k]["bias"]) for k in KINDS}, str(data.get("fitted_on", "")))

    @classmethod
    def neutral(cls) -> "RelevanceModel":
        """Every candidate at 0.5: what fitting starts from, before any weights exist."""
        return cls({k: tuple(0.0 for _ in FEATURES) for k in KINDS}, {k: 0.0 for k in KINDS}, "neutral")

    def to_json(self, **extra) -> dict:
        return {"format": FORMAT, "version": VERSION, "features": list(FEATURES),
                "models": {k: {"weights": [round(w, 6) for w in self.weights[k]], "bias": round(self.bias[k], 6)}
                           for k in KINDS},
                "fitted_on": self.fitted_on, **extra}

    def probability(self, features: dict[str, float], kind: str = "bank") -> float:
        z = self.bias[kind] + sum(w * features[name] for w, name in zip(self.weights[kind], FEATURES))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


@lru_cache(maxsize=1)
def default_model() -> RelevanceModel:
    return RelevanceModel.load()


@dataclass
class QueryTerms:
    """The content of a query: weighted terms, and the key ones a candidate must name."""

    weights: dict[str, float]  # term -> IDF
    key: frozenset[str]  # glossary concepts ("§id") and Latin-script terms
    unseen: float = 0.0  # IDF-weighted share of the terms no question in the index uses


class TermStats:
    """Document frequencies of question terms over every unit of an index."""

    def __init__(self, question_terms: list[set[str]]):
        self.n = max(1, len(question_terms))
        self.df: dict[str, int] = {}
        for terms in question_terms:
            for t in terms:
                self.df[t] = self.df.get(t, 0) + 1

    def idf(self, term: str) -> float:
        # A term no question has used is as rare as can be: it weighs the most.
        return math.log(1 + self.n / (1 + self.df.get(term, 0)))


def content_terms(text: str, glossary) -> set[str]:
    """Tokens of ``text`` with every glossary name folded into one ``§concept`` term.

    >>> sorted(content_terms("BN层的作用", glossary))   # doctest: +SKIP
    ['§batch-norm', '作用', '层']
    """
    concepts = glossary.concepts_in(text)
    names = [compact(n) for cid in concepts for n in glossary.concepts[cid].names if n]
    terms = {f"§{cid}" for cid in concepts}
    for token in tokenize(text, glossary.tokenizer):
        form = compact(token)
        if form and not any(form in name for name in names):
            terms.add(form)
    return terms


def query_terms(query: str, glossary, stats: TermStats) -> QueryTerms:
    terms = content_terms(query, glossary)
    concepts = {t for t in terms if t.startswith("§")}
    known = [compact(n) for c in concepts for n in glossary.concepts[c[1:]].names if n]
    names = {w for w in named_terms(query, proper_nouns=True)
             if glossary.concept_of(w) is None and not any(w in n for n in known)}
    weights = {t: stats.idf(t) for t in terms}
    total = sum(weights.values())
    unseen = sum(w for t, w in weights.items() if t not in stats.df) / total if total > 0 else 0.0
    return QueryTerms(weights, frozenset(concepts | names), unseen)


def uncovered(query: QueryTerms, terms: set[str], text: str) -> int:
    """How many key terms of the query a candidate does not name: concepts by id, names as written."""
    return sum(1 for k in query.key if (k not in terms if k.startswith("§") else k not in text))


def named_terms(query: str, proper_nouns: bool = False) -> set[str]:
    """Latin-script words that name something: any in a Chinese question ("lora原理"), and in
    an English one only those written like names or acronyms (LoRA, RLHF, YOLOv3, t-SNE).
    With ``proper_nouns`` an English word capitalised inside a sentence counts too ("How does
    Lion differ from Adam?"): a method's name, which an answer about another method lacks."""
    words = re.findall(r"[A-Za-z][A-Za-z0-9\-+._]*[A-Za-z0-9+]|[A-Za-z]", query)
    chinese = len(re.findall(r"[\u4e00-\u9fff]", query)) >= len(words)
    named = {w for w in words if chinese or any(c.isupper() for c in w[1:]) or any(c.isdigit() for c in w)
             or (w.isupper() and len(w) >= 2) or any(c in "._" for c in w)}
    if proper_nouns and not chinese:
        named |= {m.group(1) for m in re.finditer(r"(?<![.?!:;]\s)(?<!^)\b([A-Z][a-z][A-Za-z0-9\-]*)", query.strip())}
    return {w.lower() for w in named if len(w) >= 2 and w.lower() not in _GENERIC_LATIN}


def cover(query: QueryTerms, terms: set[str]) -> float:
    """IDF-weighted share of the query's terms found in ``terms`` (1.0 for an empty query)."""
    total = sum(query.weights.values())
    if total <= 0:
        return 1.0
    return sum(w for t, w in query.weights.items() if t in terms) / total


def back_cover(query: QueryTerms, phrasings: list[set[str]], stats: TermStats) -> float:
    """The best share, over a candidate's phrasings, of the phrasing's terms that the query names."""
    best = 0.0
    for terms in phrasings:
        total = sum(stats.idf(t) for t in terms)
        if total > 0:
            best = max(best, sum(stats.idf(t) for t in terms if t in query.weights) / total)
    return best


def features(query: QueryTerms, q_terms: set[str], b_terms: set[str], q_text: str, b_text: str,
             q_cos: float, b_cos: float, q_back: float) -> dict[str, float]:
    """The signals of one candidate; ``q_text`` and ``b_text`` are its question and body, compacted."""
    has_question = bool(q_terms)
    missing_q = uncovered(query, q_terms, q_text) if has_question else uncovered(query, b_terms, b_text)
    return {
        "q_cos": float(q_cos) if has_question else 0.0,
        "b_cos": float(b_cos),
        "q_cover": cover(query, q_terms) if has_question else 0.0,
        "q_back": float(q_back) if has_question else 0.0,
        "b_cover": cover(query, b_terms),
        "missing": float(missing_q),
        "missing_all": float(min(missing_q, uncovered(query, q_terms | b_terms, q_text + b_text))),
        "has_q": 1.0 if has_question else 0.0,
        "gap": 0.0,  # filled in by add_gaps, once the other candidates are known
        "unseen": query.unseen,
    }


def add_gaps(rows: list[dict[str, float]], twins: list[set[int]] | None = None) -> None:
    """Set each row's ``gap``: its match on the question minus the best other row's.

    ``twins[i]`` lists the rows that ask nearly the same question as row ``i`` (two bank
    items on vanishing gradients); they are not rivals, so they do not shrink its gap.
    """
    signal = [r["q_cos"] if r["has_q"] else r["b_cos"] for r in rows]
    for i, row in enumerate(rows):
        skip = twins[i] if twins else set()
        others = [v for j, v in enumerate(signal) if j != i and j not in skip]
        row["gap"] = signal[i] - max(others) if others else 0.0


def fit(rows: list[dict[str, float]], labels: list[int], kinds: list[str], fitted_on: str) -> RelevanceModel:
    """Logistic regression over ``FEATURES`` (scikit-learn, L2), one per kind of candidate."""
    from sklearn.linear_model import LogisticRegression

    weights, bias = {}, {}
    for kind in KINDS:
        picked = [i for i, k in enumerate(kinds) if k == kind]
        x = np.array([[rows[i][f] for f in FEATURES] for i in picked], dtype=np.float64)
        model = LogisticRegression(C=1.0, max_iter=3000).fit(x, np.array([labels[i] for i in picked]))
        weights[kind], bias[kind] = tuple(float(w) for w in model.coef_[0]), float(model.intercept_[0])
    return RelevanceModel(weights, bias, fitted_on)
