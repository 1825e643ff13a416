"""The coverage benchmark: of the questions interviews ask, how many does the bank answer, and does
the coach find that answer?

``corpus/eval/coverage/`` holds interview questions written blind to the bank (before its
2026 items existed) and, in ``*_judged.jsonl``, the bank items a separate reader judged to
answer each one (``gold``; empty when none does). Two figures per area:

- *covered*: the share of questions some item answers (a property of the bank);
- *found*: of the covered questions, the share where chat's answer is a gold item (a property
  of retrieval and relevance); and for the uncovered ones, how often chat still shows a bank
  item as the answer (a wrong answer).

Rows are split into halves by a hash of the question, as in the other benchmarks; nothing
is fitted on this set, so both halves are held out.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from .evaluate_abstain import half


def evaluate_coverage(kb, files: list[Path]) -> dict:
    from .chat import ChatEngine

    chat = ChatEngine(kb)
    tally: dict[tuple[str, str], dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            gold = set(row.get("gold") or [])
            found = chat.find(row["query"])
            lead = next((h for h in found.answers if h.kind == "bank"), None)
            for key in ((row.get("area", "?"), half(row)), ("all", half(row)), ("all", "both")):
                t = tally[key]
                t["covered"].append(bool(gold))
                if gold:
                    t["found"].append(lead is not None and lead.item_id in gold)
                    t["answered"].append(lead is not None)
                else:
                    t["wrong_when_uncovered"].append(lead is not None)
    out = {}
    for (area, h), t in sorted(tally.items()):
        out.setdefault(area, {})[h] = {k: (sum(v) / len(v), len(v)) for k, v in t.items() if v}
    return out


def format_coverage(report: dict) -> str:
    lines = ["| area | half | questions | covered by an item | answered | found (right item) | wrong answer when uncovered |",
             "|---|---|---|---|---|---|---|"]
    for area, halves in report.items():
        for h, m in halves.items():
            def cell(name):
                v = m.get(name)
                return f"{v[0]:.3f} (n={v[1]})" if v else "-"
            lines.append(f"| {area} | {h} | {m['covered'][1]} | {cell('covered')} | {cell('answered')} | "
                         f"{cell('found')} | {cell('wrong_when_uncovered')} |")
    return "\n".join(lines)
