"""The blind grading benchmark: the grader against answers written without the key points.

``corpus/eval/grading_blind/`` holds answers to 74 bank questions written by
people who saw only the question, with gold scores fixed by the rubric
(``docs/grading-rubric.md``) before any program ran. Questions are split in
two halves by a hash of the item id: the score model (``scoring.py``) may be
fitted on the *tune* half (and on ``corpus/eval/grading_train/``, answers to
other questions written the same way); the *held-out* half is only measured.

Also measured: sample page 003's own answers graded against their own
question (they should pass) and against another page question (they should not).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from .evaluate import percentile

KINDS = ("paraphrase", "partial", "english", "mixed", "short_correct", "swap", "excellent", "good")


def half(row: dict) -> str:
    return "tune" if hashlib.sha256(row["item_id"].encode()).digest()[0] % 2 == 0 else "held-out"


def load_rows(folder: Path) -> list[dict]:
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        rows += [{**json.loads(line), "_set": path.stem} for line in path.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    return rows


# blind answers to questions of the 2026 items, also reported on their own
GROUPS = {"set3_llm": "LLM-era", "set4_part2": "part-2"}


def fit_score_model(grader, corpus: Path):
    """Fit ``scoring`` on the tune half and the training answers; write resources/score_model.json."""
    from . import scoring
    from .config import RESOURCES
    from .grade import Reference

    rows = [r for r in load_rows(corpus / "eval" / "grading_blind") if half(r) == "tune"]
    rows += load_rows(corpus / "eval" / "grading_train")
    rows += _answers_to_other_questions(rows, grader.kb.bank)
    held_out = {r["item_id"] for r in load_rows(corpus / "eval" / "grading_blind") if half(r) == "held-out"}
    rows += [{"item_id": i.id, "answer": i.answer, "gold": 10.0, "kind": "reference"}
             for i in grader.kb.bank.items.values() if i.id not in held_out]  # the top of the scale
    feats, targets, groups = [], [], []
    for row in rows:
        if row.get("gold") is None or row["item_id"] not in grader.kb.bank.items:
            continue
        ref = Reference.from_item(grader.kb.bank.items[row["item_id"]])
        analysis = grader.analyse(ref, row["answer"])
        feats.append(analysis.signals)
        # the model scores content; stated misconceptions are charged by rule afterwards
        targets.append(min(10.0, float(row["gold"]) + 2.0 * len(analysis.found)))
        groups.append(row["item_id"])
    model = scoring.fit(feats, targets, groups, f"grading_blind tune half and grading_train: {len(feats)} answers "
                                                f"to {len(set(groups))} questions")
    (RESOURCES / "score_model.json").write_text(json.dumps(model.to_json(), ensure_ascii=False) + "\n", encoding="utf-8")
    scoring.default_model.cache_clear()
    grader.model = model
    return model


def _answers_to_other_questions(rows: list[dict], bank, per_question: int = 1) -> list[dict]:
    """Good answers moved to a question of another topic: off-topic by the rubric (gold 0.5).

    Blind writers wrote few off-topic answers, all short; a long fluent answer to the wrong
    question is what the grader most needs to score low, so the training set gets some.
    """
    import random

    rng = random.Random(7)
    from .text import meaningful_length

    good = [r for r in rows if (r.get("gold") or 0) >= 6 and r["item_id"] in bank.items
            and meaningful_length(r["answer"]) >= 150]
    items = sorted({r["item_id"] for r in rows if r["item_id"] in bank.items})
    out = []
    for item in items:
        topic = bank.items[item].topic
        donors = [r for r in good if bank.items[r["item_id"]].topic != topic]
        for donor in rng.sample(donors, min(per_question, len(donors))):
            out.append({"item_id": item, "answer": donor["answer"], "gold": 0.5, "kind": "off_topic"})
    return out


def evaluate_blind(grader, corpus: Path) -> dict[str, dict]:
    """Per half: agreement with the gold scores, bias per kind, misconception flags, latency."""
    rows = load_rows(corpus / "eval" / "grading_blind")
    by_half: dict[str, list] = defaultdict(list)
    latencies = []
    for row in rows:
        start = time.perf_counter()
        grade = grader.grade(row["answer"], item_id=row["item_id"])
        latencies.append((time.perf_counter() - start) * 1000)
        by_half[half(row)].append((row, grade))
        if row.get("_set") in GROUPS:
            by_half[f"{GROUPS[row['_set']]} {half(row)}"].append((row, grade))
    out = {h: _measures(pairs) for h, pairs in by_half.items()}
    for h in out:
        out[h]["p50_ms"] = percentile(latencies, 0.5)
    return out


def _measures(pairs) -> dict:
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score, roc_auc_score

    scored = [(r, g) for r, g in pairs if r.get("gold") is not None]
    y = np.array([float(r["gold"]) for r, _ in scored])
    p = np.array([g.score if g.score is not None else 0.0 for _, g in scored])
    out = {"answers": len(scored), "questions": len({r["item_id"] for r, _ in scored}),
           "spearman": float(spearmanr(p, y).statistic), "mae": float(np.mean(np.abs(p - y))),
           "bias": float(np.mean(p - y)),
           "qwk": float(cohen_kappa_score(np.rint(y).astype(int), np.rint(p).astype(int), weights="quadratic",
                                          labels=list(range(11)))),
           "auc_pass": float(roc_auc_score(y >= 6, p))}
    for kind in KINDS:
        idx = [i for i, (r, _) in enumerate(scored) if r.get("kind") == kind]
        if idx:
            out[f"{kind}: gold / predicted"] = f"{y[idx].mean():.2f} / {p[idx].mean():.2f}"
    flagged = lambda kind: [bool(g.misconceptions) for r, g in scored if r.get("kind") == kind]  # noqa: E731
    out["misconceptions caught"] = float(np.mean(flagged("misconception") or [0]))
    out["false flags on correct negations"] = float(np.mean(flagged("negation") or [0]))
    out["swapped definitions scored <= 3"] = float(np.mean([g.score <= 3 for r, g in scored if r.get("kind") == "swap"]
                                                          or [0]))
    return out


def evaluate_seed_page(grader, page: Path) -> dict:
    """Page 003's own answers against their own question, and against the next question's."""
    from sklearn.metrics import roc_auc_score

    from .documents import key_points_from
    from .grade import Reference
    from .ingest import load_chunks

    groups: dict[str, list[str]] = {}
    for chunk in load_chunks(page):
        if chunk.kind == "qa" and chunk.title:
            groups.setdefault(chunk.title, []).append(chunk.text)
    pairs = [(q, "\n".join(t)) for q, t in groups.items() if key_points_from("\n".join(t), grader.kb.bank.glossary)]
    own, other = [], []
    for n, (question, answer) in enumerate(pairs):
        own.append(_free(grader, question, answer))
        other.append(_free(grader, pairs[(n + 1) % len(pairs)][0], answer))
    labels = [1] * len(own) + [0] * len(other)
    out = {"questions": len(pairs), "own mean": float(np.mean(own)), "other mean": float(np.mean(other)),
           "auc own vs other": float(roc_auc_score(labels, own + other))}
    gold_file = grader.kb.settings.corpus_dir / "eval" / "grading_seed" / "003_gold.jsonl"
    if gold_file.exists():  # two graders' blind rubric scores of the same answers (see corpus/README.md)
        from scipy.stats import spearmanr

        gold = {row["question"]: row["gold"] for row in map(json.loads, gold_file.read_text("utf-8").splitlines())}
        graded = [(gold[q], score) for (q, _), score in zip(pairs, own) if q in gold]
        y, p = np.array([g for g, _ in graded]), np.array([s for _, s in graded])
        out.update({"gold mean": float(y.mean()), "vs gold: spearman": float(spearmanr(p, y).statistic),
                    "vs gold: mae": float(np.mean(np.abs(p - y))), "vs gold: bias": float(np.mean(p - y))})
    return out


def _free(grader, question: str, answer: str) -> float:
    grade = grader.grade(answer, question=question)
    return grade.score if grade.score is not None else 0.0


def format_blind(report: dict) -> str:
    names = list(dict.fromkeys(k for h in report.values() for k in h))
    halves = [h for h in ("tune", "held-out", *(f"{g} {x}" for g in GROUPS.values() for x in ("tune", "held-out")))
              if h in report]
    lines = ["| measure | " + " | ".join(halves) + " |", "|---|" + "---|" * len(halves)]
    for name in names:
        cells = [report.get(h, {}).get(name, "-") for h in halves]
        cells = [f"{c:.3f}" if isinstance(c, float) else str(c) for c in cells]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
