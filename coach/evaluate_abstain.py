"""The abstention benchmark: does the coach answer what it can, and only that?

The development set (``corpus/eval/abstain/``, written blind to the bank's
answers; see its README) has five parts:

- ``answerable.jsonl``: questions a bank item answers (``gold`` ids);
- ``unanswerable.jsonl``: real interview questions nothing answers;
- ``notes.jsonl``: questions only the user's notes (``docs/llm_notes.md``) answer;
- ``seeds.jsonl``: questions about the two sample pages in ``../shared/seeds``;
- ``followups.jsonl``: a question, a short follow-up, and what answers the follow-up;
- ``followups_fresh.jsonl``: 80 more follow-up pairs, written after the follow-up
  reading was built, by a writer who saw only the bank's questions; never used to
  design or fit anything.

The benchmark indexes the bank with the notes and the sample pages in a
temporary folder and asks every question through the same ``ChatEngine``
the CLI and the web app use. Every part is split in two halves by a hash of
the question: ``--fit`` fits the relevance model (``relevance.py``) on the
*tune* half only; the *held-out* half is never fitted on, and both are
reported.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import relevance as rel
from .config import RESOURCES
from .errors import CoachError
from .text import compact

PARTS = ("answerable", "unanswerable", "notes", "seeds", "followups", "followups_fresh")
SEED_FILES = ("000_bb044a5de82e6e5e.txt", "003_7b40eaba8e657ec8.txt")


def half(row: dict) -> str:
    """"tune" or "held-out", fixed by a hash of the question (never by anything the coach does)."""
    text = row.get("query") or f"{row.get('previous')}\n{row.get('followup')}"
    return "tune" if hashlib.sha256(text.encode()).digest()[0] % 2 == 0 else "held-out"


def load_set(folder: Path) -> dict[str, list[dict]]:
    out = {}
    for part in PARTS:
        path = folder / f"{part}.jsonl"
        if not path.exists():
            raise CoachError(f"{path} is missing; the abstention set needs all of {', '.join(PARTS)}.")
        out[part] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    # a row's gold decides its part: a question a newer bank item answers counts as answerable
    moved = [r for r in out["unanswerable"] if r.get("gold")]
    back = [r for r in out["answerable"] if not r.get("gold")]
    out["unanswerable"] = [r for r in out["unanswerable"] if not r.get("gold")] + back
    out["answerable"] = [r for r in out["answerable"] if r.get("gold")] + moved
    return out


def build_kb(settings, folder: Path, seeds_dir: Path, tmp: Path, progress=None, extra_docs=()):
    """The bank plus the notes and both sample pages (and ``extra_docs``), indexed in ``tmp``."""
    from .knowledge import KnowledgeBase

    seeds = [seeds_dir / name for name in SEED_FILES]
    missing = [p.name for p in seeds if not p.exists()]
    if missing:
        raise CoachError(f"Sample pages {', '.join(missing)} not found in {seeds_dir}; pass --seeds DIR.")
    kb = KnowledgeBase(replace(settings, index_dir=tmp / "index"), progress=progress)
    report = kb.build([folder / "docs" / "llm_notes.md", *seeds, *extra_docs])
    if report.errors:
        raise CoachError(f"Could not index the benchmark documents: {report.errors}")
    return kb


def _same_section(hit, doc: str, sections: list[str]) -> bool:
    """Is ``hit`` a chunk of the gold section (a heading may be written with its number or body)?"""
    if hit.kind != "doc" or hit.source != doc:
        return False
    a = compact(hit.title)
    for section in sections:
        b = compact(section.lstrip("●•0123456789、. "))
        if a and b and (a == b or a in b or b in a):
            return True
    return False


def _section_of(row: dict) -> tuple[str, list[str]]:
    sections = [row[k] for k in ("gold_section", "gold_section_short", "gold_section_alt") if row.get(k)]
    return row["gold_doc"], [str(s) for s in sections]


def _name_notes_sections(folder: Path, rows: list[dict]) -> None:
    """Notes rows name their heading by its number; put the heading's text in its place."""
    text = (folder / "docs" / "llm_notes.md").read_text(encoding="utf-8")
    headings = [line[3:].strip() for line in text.splitlines() if line.startswith("## ")]
    for row in rows:
        if str(row["gold_section"]).isdigit():
            row["gold_section"] = headings[int(row["gold_section"]) - 1]


def labelled_candidates(kb, part: str, row: dict, unlabelled_docs=frozenset()) -> list[tuple[dict, int, str]]:
    """(features, answers?, kind) for the candidates of one row; unknowable labels are left out."""
    found = kb.lookup(row["query"])
    out = [(hit.features, int(hit.item_id in set(row.get("gold") or [])), "bank") for hit in found.bank]
    if part in ("notes", "seeds"):
        doc, sections = _section_of(row)
        out += [(hit.features, int(_same_section(hit, doc, sections)), "doc") for hit in found.docs]
    elif part == "unanswerable":  # written against the bank and the sample pages, not the training notes
        out += [(hit.features, 0, "doc") for hit in found.docs if hit.source not in unlabelled_docs]
    # answerable rows: a sample page may answer the same question, so its chunks get no label
    return out


def load_training(folder: Path) -> dict[str, list[dict]]:
    """``train/``: more queries written the same blind way, for fitting only (never reported)."""
    out: dict[str, list[dict]] = {"answerable": [], "unanswerable": [], "seeds": []}
    for path in sorted((folder / "train").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                part = "seeds" if row.get("gold_doc") else "answerable" if row.get("gold") else "unanswerable"
                out[part].append(row)
    return out


def fit_model(kb, rows: dict[str, list[dict]], train_kb=None, train_rows=None) -> rel.RelevanceModel:
    """Fit on the tune half of the development set (and the training set, if given)."""
    x, y, kinds = [], [], []

    def collect(kb, part, row, unlabelled=frozenset()):
        for feats, label, kind in labelled_candidates(kb, part, row, unlabelled):
            x.append(feats)
            y.append(label)
            kinds.append(kind)

    for part in ("answerable", "unanswerable", "notes", "seeds"):
        for row in rows[part]:
            if half(row) == "tune":
                collect(kb, part, row)
    n_dev = len(x)
    train_docs = frozenset(p.name for p in (kb.settings.corpus_dir / "eval" / "abstain" / "train" / "docs").glob("*"))
    for part, part_rows in (train_rows or {}).items():
        for row in part_rows:
            collect(train_kb, part, row, train_docs)
    model = rel.fit(x, y, kinds, fitted_on=f"corpus/eval/abstain: tune half ({n_dev} candidates) and train/ "  # train/ may be 0
                                    f"({len(x) - n_dev}), {sum(y)} answering")
    (RESOURCES / "relevance.json").write_text(json.dumps(model.to_json(), ensure_ascii=False, indent=1) + "\n",
                                              encoding="utf-8")
    return model


def score_rows(kb, rows: dict[str, list[dict]]) -> dict[str, dict]:
    """Per half, the measures the abstention issue names."""
    from .chat import ChatEngine

    chat = ChatEngine(kb)
    tallies: dict[str, dict[str, list]] = {"tune": {}, "held-out": {}}

    def add(row, name, value):
        tallies[half(row)].setdefault(name, []).append(value)

    for row in rows["unanswerable"]:
        wrong = chat.find(row["query"]).answer is not None
        add(row, "unanswerable: wrong answer shown", wrong)
        add(row, f"  of which {row.get('batch') or 'first set (2026-11)'}", wrong)
    for row in rows["answerable"]:
        found = chat.find(row["query"])
        lead = next((h for h in found.answers if h.kind == "bank"), None)
        add(row, "answerable: answered", lead is not None)
        if lead is not None:
            add(row, "answerable: right when answered", lead.item_id in set(row["gold"]))
        add(row, f"  answered, {row.get('batch') or 'first set (2026-11)'}", lead is not None)
    for row in rows["notes"]:
        doc, section = _section_of(row)
        found = chat.find(row["query"])
        if row.get("gold"):  # the bank answers it too: the notes must still be found beside the bank's answer
            answer = chat.answer(row["query"])
            add(row, "notes the bank also answers: note among sources",
                any(s.kind == "doc" and s.source == doc and _same_section(s, doc, section) for s in answer.sources))
            lead = next((h for h in found.answers if h.kind == "bank"), None)
            add(row, "notes the bank also answers: bank answer right", lead is not None and lead.item_id in set(row["gold"]))
            continue
        add(row, "notes: answered from the notes", found.answer is not None and _same_section(found.answer, doc, section))
        add(row, "notes, bank only: wrong answer shown", any(h.answers for h in found.bank))
    for row in rows["seeds"]:
        doc, section = _section_of(row)
        answer = chat.answer(row["query"])
        add(row, "seeds: gold passage among sources",
            any(s.kind == "doc" and s.source == doc and _same_section(s, doc, section) for s in answer.sources))
    for part, label in (("followups", "follow-ups"), ("followups_fresh", "fresh follow-ups")):
        for row in rows[part]:
            found = chat.find(row["followup"], row["previous"])
            if row["gold"]:  # as for answerable questions: the bank's answer (a document may lead beside it)
                lead = next((h for h in found.answers if h.kind == "bank"), None)
                add(row, f"{label}: right answer", lead is not None and lead.item_id in set(row["gold"]))
            else:  # gold lists bank items only: the user's notes may answer it, the bank must not
                add(row, f"{label} with no bank answer: no bank item shown as the answer",
                    not any(h.kind == "bank" for h in found.answers))
    return {h: {name: (float(np.mean(v)), len(v)) for name, v in t.items()} for h, t in tallies.items()}


def evaluate_abstain(settings, folder: Path | None = None, seeds_dir: Path | None = None, fit: bool = False,
                     progress=None, with_train: bool = True) -> dict:
    folder = Path(folder or settings.corpus_dir / "eval" / "abstain")
    seeds_dir = Path(seeds_dir or settings.corpus_dir.parent.parent / "shared" / "seeds")
    rows = load_set(folder)
    _name_notes_sections(folder, rows["notes"])
    with tempfile.TemporaryDirectory() as tmp:
        kb = build_kb(settings, folder, seeds_dir, Path(tmp), progress)
        model = None
        if fit:  # features do not depend on the weights, so any model serves to collect them
            kb.set_relevance_model(rel.RelevanceModel.neutral())
            train_rows, train_kb = {}, None
            if with_train:  # train/ (re-judged for the 695-item bank); --tune-only leaves it out
                train_rows = load_training(folder)
                # the training notes answer some development questions, so they get their own index
                train_kb = build_kb(settings, folder, seeds_dir, Path(tmp) / "train", progress,
                                    sorted((folder / "train" / "docs").glob("*")))
                train_kb.set_relevance_model(rel.RelevanceModel.neutral())
            model = fit_model(kb, rows, train_kb, train_rows)
            rel.default_model.cache_clear()
            kb.set_relevance_model(model)
        results = score_rows(kb, rows)
    counts = {part: len(r) for part, r in rows.items()}
    return {"counts": counts, "results": results, "model": (model or kb.retriever.model).to_json()}


def format_report(report: dict) -> str:
    names = list(dict.fromkeys(n for h in report["results"].values() for n in h))
    lines = ["| measure | tune | held-out |", "|---|---|---|"]
    for name in names:
        cells = []
        for h in ("tune", "held-out"):
            value = report["results"][h].get(name)
            cells.append(f"{value[0]:.3f} (n={value[1]})" if value else "-")
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    counts = ", ".join(f"{k} {v}" for k, v in report["counts"].items())
    return "\n".join(lines) + f"\n\nrows: {counts}\nmodel: {json.dumps(report['model'], ensure_ascii=False)}"
