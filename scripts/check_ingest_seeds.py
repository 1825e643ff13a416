"""Run the ingestion pipeline on real pasted pages and check what comes out.

    .venv/bin/python scripts/check_ingest_seeds.py [FOLDER_OR_FILES ...]   (default: /work/shared/seeds)

For each file it prints every chunk, then checks that every question the raw
page shows ("● ..." bullets and "N、..." sections) is the title of a chunk,
and that no chunk carries page noise. Exit status 1 if a check fails.
These pages are not part of the repository, hence a script and not a test.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coach.ingest import load_chunks  # noqa: E402

DEFAULT = Path("/work/shared/seeds")
NOISE = re.compile(r"回答 \d|相关问题推荐|去提问|\d楼|发布|条回答|图片来自|原文地址|https?://|www\.")
BULLET = re.compile(r"^\s*●\s*(\S.*)$")
NUMBERED = re.compile(r"^\s*\d{1,2}\s*、\s*(\S.*)$")


def expected_questions(raw: str) -> list[str]:
    """The page's questions, as their first 8 characters: "● ..." lines if it has any, else "N、..." lines.

    Only the page's own text counts: the related-questions widgets after "相关问题推荐" are noise,
    and "1、..." table cells inside a "●" page's answers are not questions.
    """
    lines = raw.split("相关问题推荐")[0].splitlines()
    pattern = BULLET if any(BULLET.match(line) for line in lines) else NUMBERED
    return [m.group(1).strip().rstrip(":：")[:8] for line in lines if (m := pattern.match(line))]


def check(path: Path) -> bool:
    chunks = load_chunks(path)
    kinds = {k: sum(c.kind == k for c in chunks) for k in ("qa", "section", "text")}
    print(f"\n===== {path.name}: {len(chunks)} chunks ({kinds['qa']} qa, {kinds['section']} section, {kinds['text']} text)")
    for c in chunks:
        text = c.text.replace("\n", " / ")
        print(f"[{c.position:2}] {c.kind:7} {c.title!r} ({len(c.text)} chars)\n      {text[:70]} … {text[-30:]}")
    titles = [c.title for c in chunks]
    expected = expected_questions(path.read_text(encoding="utf-8"))
    missing = [q for q in expected if not any(t.startswith(q) for t in titles)]
    noisy = [(c.position, m.group(0)) for c in chunks if (m := NOISE.search(c.title + c.text))]
    print(f"questions found as titles: {len(expected) - len(missing)}/{len(expected)}; missing: {missing or 'none'}")
    print(f"noise left: {noisy or 'none'}")
    return not missing and not noisy


def main(args: list[str]) -> int:
    targets = [Path(a) for a in args] or [DEFAULT]
    files = sorted(f for t in targets for f in (t.glob("*.txt") if t.is_dir() else [t]))
    if not files:
        print(f"no files found in {', '.join(map(str, targets))}")
        return 1
    results = [check(f) for f in files]
    print(f"\n{sum(results)}/{len(results)} files pass")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
