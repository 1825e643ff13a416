"""Benchmarks that print the numbers the docs quote.

``evaluate_retrieval`` runs the development set through the same
``KnowledgeBase.search`` the CLI and the web app use, once per mode, and
reports recall, MRR and per-query latency. ``evaluate_scale`` builds an
index of the bank plus N synthetic document chunks in a temporary folder and
times the build and the searches.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from .errors import CoachError
from .retrieve import MODES


def load_jsonl(path: Path | None, default: Path) -> list[dict]:
    """Rows of one .jsonl file, or of every .jsonl file in a folder (sorted)."""
    path = Path(path or default)
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    rows = []
    for f in files:
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    raise CoachError(f"{f.name} line {n} is not valid JSON; fix or remove it.") from None
    if not rows:
        raise CoachError(f"No development rows found in {path}.")
    return rows


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def evaluate_retrieval(kb, dev_set: Path | None = None, modes=MODES) -> list[dict]:
    rows = load_jsonl(dev_set, kb.settings.corpus_dir / "eval" / "retrieval")
    kb.search("warm up", k=1)  # load models and index before timing
    return [_score_mode(kb, rows, mode) for mode in modes]


def _score_mode(kb, rows: list[dict], mode: str) -> dict:
    r1 = r5 = mrr = 0.0
    latencies = []
    for row in rows:
        gold = set(row["gold"])
        start = time.perf_counter()
        hits = kb.search(row["query"], k=10, mode=mode)
        latencies.append((time.perf_counter() - start) * 1000)
        ids = [h.item_id for h in hits]
        rank = next((i for i, x in enumerate(ids, 1) if x in gold), None)
        r1 += rank == 1
        r5 += rank is not None and rank <= 5
        mrr += 1 / rank if rank else 0
    n = len(rows)
    return {"mode": mode, "queries": n, "R@1": r1 / n, "R@5": r5 / n, "MRR@10": mrr / n,
            "p50_ms": percentile(latencies, 0.5), "p95_ms": percentile(latencies, 0.95)}


def format_table(rows: list[dict]) -> str:
    """A Markdown table of the rows (same keys in each)."""
    keys = list(rows[0])
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) and v < 10 else (f"{v:.1f}" if isinstance(v, float) else str(v))  # noqa: E731
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def synthetic_documents(kb, n_chunks: int, folder: Path, seed: int = 7) -> list[Path]:
    """Write files with ``n_chunks`` Q&A pairs made by recombining bank sentences."""
    from .text import split_sentences

    rng = random.Random(seed)
    items = list(kb.bank.items.values())
    sentences = [s for i in items for s in split_sentences(i.answer)]
    paths, per_file = [], 500
    for f in range(0, n_chunks, per_file):
        blocks = []
        for j in range(f, min(f + per_file, n_chunks)):
            q = rng.choice(items).question
            body = "".join(rng.sample(sentences, 3))[:480]
            blocks.append(f"● 问题{j}:{q}\n参考回答:\n{body}\n")
        path = folder / f"synthetic-{f // per_file:03d}.txt"
        path.write_text("\n".join(blocks), encoding="utf-8")
        paths.append(path)
    return paths


def evaluate_scale(kb, n_chunks: int = 10_000, dev_set: Path | None = None) -> dict:
    """Build bank + ``n_chunks`` synthetic chunks in a temp folder; time build and search."""
    from .knowledge import KnowledgeBase

    queries = [r["query"] for r in load_jsonl(dev_set, kb.settings.corpus_dir / "eval" / "retrieval")]
    with tempfile.TemporaryDirectory() as tmp:
        docs = synthetic_documents(kb, n_chunks, Path(tmp))
        big = KnowledgeBase(replace(kb.settings, index_dir=Path(tmp) / "index"), progress=kb.progress)
        start = time.perf_counter()
        big.build(docs)
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        fresh = KnowledgeBase(big.settings)
        fresh.search("warm up", k=1)
        load_s = time.perf_counter() - start
        latencies = []
        for q in queries:
            t = time.perf_counter()
            fresh.search(q, k=10)
            latencies.append((time.perf_counter() - t) * 1000)
        counts = fresh.data.manifest()["counts"]
        note = Path(tmp) / "one-more-note.md"
        note.write_text("# 什么是张量?\n张量就是多维数组,标量、向量和矩阵都是它的特例。\n", encoding="utf-8")
        start = time.perf_counter()
        fresh.ingest([note])  # one chunk more: writes its own segment, not the whole index again
        add_s = time.perf_counter() - start
    return {"doc_chunks": counts["doc_units"], "bank_items": counts["bank_units"], "vectors": counts["vectors"],
            "build_s": build_s, "load_s": load_s, "add_one_chunk_s": add_s, "search_p50_ms": percentile(latencies, 0.5),
            "search_p95_ms": percentile(latencies, 0.95)}


def evaluate_grading(grader, dev_set: Path | None = None) -> dict:
    """Agreement of the offline grader with the gold scores of the grading development set."""
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score, roc_auc_score

    rows = load_jsonl(dev_set, grader.kb.settings.corpus_dir / "eval" / "grading")
    grader.grade("warm up", item_id=rows[0]["item_id"])
    predicted, gold, kinds, latencies, empty_ok, empty_n = [], [], [], [], 0, 0
    for row in rows:
        start = time.perf_counter()
        grade = grader.grade(row["answer"], item_id=row["item_id"])
        latencies.append((time.perf_counter() - start) * 1000)
        if row["gold"] is None:
            empty_n += 1
            empty_ok += grade.score is None
            continue
        predicted.append(grade.score if grade.score is not None else 0.0)
        gold.append(float(row["gold"]))
        kinds.append(row.get("kind", ""))
    p, g = np.array(predicted), np.array(gold)
    on_topic = np.array([k != "off_topic" for k in kinds])
    return {
        "answers": len(rows), "items": len({r["item_id"] for r in rows}),
        "spearman": float(spearmanr(p, g).statistic), "mae": float(np.mean(np.abs(p - g))),
        "qwk": float(cohen_kappa_score(np.rint(g).astype(int), np.rint(p).astype(int), weights="quadratic",
                                       labels=list(range(11)))),
        "auc_on_vs_off": float(roc_auc_score(on_topic, p)) if on_topic.any() and (~on_topic).any() else float("nan"),
        "empty_handled": f"{empty_ok}/{empty_n}",
        "p50_ms": percentile(latencies, 0.5), "p95_ms": percentile(latencies, 0.95),
    }


def grading_by_kind(grader, dev_set: Path | None = None) -> list[dict]:
    """Mean gold and predicted score per answer kind: where the grader is off, and which way."""
    rows = load_jsonl(dev_set, grader.kb.settings.corpus_dir / "eval" / "grading")
    by: dict[str, list] = {}
    for row in rows:
        if row["gold"] is None:
            continue
        score = grader.grade(row["answer"], item_id=row["item_id"]).score or 0.0
        by.setdefault(row.get("kind", ""), []).append((float(row["gold"]), score))
    return [{"kind": k, "n": len(v), "gold": float(np.mean([a for a, _ in v])), "predicted": float(np.mean([b for _, b in v])),
             "mae": float(np.mean([abs(a - b) for a, b in v]))} for k, v in sorted(by.items())]
