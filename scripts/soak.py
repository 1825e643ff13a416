#!/usr/bin/env python
"""Soak test: chat, grading, interviews and document uploads together, for minutes, on loopback.

Starts `coach serve` in its own process on a copy of the index (or drives --url), then runs
N client sessions (default 20) for --minutes (default 10). Each session loops over a mix of
/ask (70%), /grade (15%) and interview steps (15%: start, answer, report at the end). Beside
them a writer adds a new small document every --upload-every seconds with `coach ingest` in a
separate process, the way a second writer (the CLI next to the app) does.

At the end it checks that nothing was lost:
- every document the writer was told was added is listed by `coach sources`, and /ask of its
  unique question returns it as a source (the running app picked up every generation);
- every interview's report lists exactly the answers its client sent.
It prints errors, latency per endpoint, and /ask p95 per minute. Exit code 1 on any error,
lost document or lost turn. Bounded: loopback only, fixed duration, every call with a timeout.

    .venv/bin/python scripts/soak.py                    # 20 sessions, 10 minutes
    .venv/bin/python scripts/soak.py --sessions 5 --minutes 1
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import load_test  # noqa: E402
from load_test import percentile  # noqa: E402

ANSWERS = ["BN用小批量的均值和方差把激活标准化,再用可学习的γ和β缩放平移,能用更大的学习率,收敛更快。",
           "先说结论:它让训练更稳定,收敛更快,也有一定正则化效果。", "不知道"]
FRUITS = ["榴莲", "山竹", "杨桃", "枇杷", "荔枝", "龙眼", "芒果", "菠萝", "石榴", "柿子", "樱桃", "蓝莓"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", help="A running app (loopback only); its index must be --index-dir.")
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--upload-every", type=float, default=30.0, help="Seconds between two document writes.")
    p.add_argument("--think", type=float, default=1.0, help="Mean pause of a session between calls (s).")
    p.add_argument("--port", type=int, default=7873)
    p.add_argument("--seed", type=int, default=11)
    return p.parse_args()


def start_app(port: int, home: Path, index_dir: Path) -> tuple[subprocess.Popen, str]:
    return load_test.start_app(port, {"COACH_HOME": str(home), "COACH_INDEX_DIR": str(index_dir)}, name="soak",
                               quiet=True, minutes=15)


class Run:
    def __init__(self, stop_at: float):
        self.stop_at = stop_at
        self.lock = threading.Lock()
        self.latency = defaultdict(list)  # endpoint -> [(t, seconds)]
        self.errors = defaultdict(list)
        self.interviews = []  # (token, answers sent)

    def ok(self, endpoint: str, began: float) -> None:
        with self.lock:
            self.latency[endpoint].append((time.monotonic(), time.monotonic() - began))

    def fail(self, endpoint: str, exc: Exception) -> None:
        with self.lock:
            self.errors[endpoint].append(f"{type(exc).__name__}: {str(exc)[:160]}")


def session(url: str, bank_items, run: Run, seed: int, think: float) -> None:
    from gradio_client import Client

    rng = random.Random(seed)
    client = Client(url, verbose=False, ssl_verify=False)
    token, sent, left = None, [], 0

    def call(endpoint, *args):
        began = time.monotonic()
        try:
            out = client.submit(*args, api_name=endpoint).result(timeout=120)
        except Exception as exc:  # noqa: BLE001 - every failure is counted
            run.fail(endpoint, exc)
            return None
        run.ok(endpoint, began)
        return out

    while time.monotonic() < run.stop_at:
        roll = rng.random()
        item = rng.choice(bank_items)
        if roll < 0.70:
            call("/ask", rng.choice([item.question, *item.asks[:2]]), "")
        elif roll < 0.85:
            call("/grade", "", rng.choice(ANSWERS), item.id)
        elif token is None:
            out = call("/interview_start", [item.topic], "adaptive", 3, 0, False)
            if out:
                token, sent, left = out[0], [], 3
        else:
            answer = rng.choice(ANSWERS)
            out = call("/interview_answer", token, answer)
            if out:
                sent.append(answer)
                if out[1] is None:  # finished
                    with run.lock:
                        run.interviews.append((token, list(sent)))
                    token = None
        time.sleep(rng.uniform(0.5 * think, 1.5 * think))
    if token is not None:
        with run.lock:
            run.interviews.append((token, list(sent)))


def writer(index_dir: Path, run: Run, every: float, folder: Path, added: list) -> None:
    """A second writer beside the app: `coach ingest` of a new small document every ``every`` seconds."""
    n = 0
    env = {**os.environ, "COACH_INDEX_DIR": str(index_dir)}
    while time.monotonic() + every < run.stop_at:
        time.sleep(every)
        fruit = FRUITS[n % len(FRUITS)]
        name = f"soak-{n:03d}.md"
        (folder / name).write_text(f"# 第{n}号笔记:{fruit}{n}号的产地在哪里?\n{fruit}{n}号产自第{n}号果园,"
                                   f"那里的土壤适合{fruit}生长,每年{n % 12 + 1}月成熟。\n", encoding="utf-8")
        began = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "coach", "ingest", str(folder / name)], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        if proc.returncode == 0 and f"added {name}" in proc.stdout:
            run.ok("ingest (cli)", began)
            added.append((name, f"{fruit}{n}号的产地在哪里?"))
        else:
            run.fail("ingest (cli)", RuntimeError(proc.stderr.strip()[-160:] or proc.stdout.strip()[-160:]))
        n += 1


def verify(url: str, index_dir: Path, run: Run, added: list) -> dict:
    from gradio_client import Client

    client = Client(url, verbose=False, ssl_verify=False)
    env = {**os.environ, "COACH_INDEX_DIR": str(index_dir)}
    listed = subprocess.run([sys.executable, "-m", "coach", "sources"], env=env, cwd=ROOT, capture_output=True,
                            text=True).stdout
    lost_docs = [name for name, _ in added if name not in listed]
    unseen = []
    for name, question in added:  # the app loads a new generation beside its requests: allow it a few seconds
        deadline = time.monotonic() + 15
        while True:
            _, info = client.predict(question, "", api_name="/ask")
            if any(s.get("source") == name or name in str(s.get("label", "")) for s in info["sources"]):
                break
            if time.monotonic() > deadline:
                unseen.append(name)
                break
            time.sleep(0.5)
    lost_turns = 0
    for token, sent in run.interviews:
        _, report = client.predict(token, api_name="/interview_report")
        if [t["answer"] for t in report["turns"] if t.get("answer") is not None] != sent:
            lost_turns += 1
    return {"documents": len(added), "lost_documents": lost_docs, "not_found_by_app": unseen,
            "interviews": len(run.interviews), "interviews_with_lost_turns": lost_turns}


def main() -> int:
    args = parse_args()
    from coach.bank import Bank
    from coach.config import Settings

    work = Path(tempfile.mkdtemp(prefix="coach-soak-"))
    index_dir = work / "index"
    settings = Settings.from_env()
    if (settings.index_dir / "CURRENT").exists():
        shutil.copytree(settings.index_dir, index_dir, ignore=shutil.ignore_patterns(".lock"))
    server = None
    if args.url:
        url = args.url
    else:
        print(f"soak: starting `coach serve` on a copy of the index in {work} ...", flush=True)
        server, url = start_app(args.port, work / "home", index_dir)
    items = list(Bank.load(settings.corpus_dir).items.values())
    docs = work / "docs"
    docs.mkdir()
    added: list = []
    began = time.monotonic()
    run = Run(began + args.minutes * 60)
    print(f"soak: {args.sessions} sessions for {args.minutes:g} min, a document every {args.upload_every:g} s",
          flush=True)
    try:
        with ThreadPoolExecutor(args.sessions + 1) as pool:
            futures = [pool.submit(session, url, items, run, args.seed + n, args.think) for n in range(args.sessions)]
            futures.append(pool.submit(writer, index_dir, run, args.upload_every, docs, added))
            for f in futures:
                f.result()
        wall = time.monotonic() - began
        checks = verify(url, index_dir, run, added)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    return report(run, checks, wall, began)


def report(run: Run, checks: dict, wall: float, began: float) -> int:
    print(f"\nwall {wall:.0f}s")
    print(f"{'endpoint':<20}{'ok':>7}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for endpoint in sorted(set(run.latency) | set(run.errors)):
        ok = [s for _, s in run.latency[endpoint]]
        p50, p95, top = (percentile(ok, .5) * 1000, percentile(ok, .95) * 1000, max(ok) * 1000) if ok else (0, 0, 0)
        print(f"{endpoint:<20}{len(ok):>7}{len(run.errors[endpoint]):>8}{p50:>9.0f}{p95:>9.0f}{top:>9.0f}")
    minutes = defaultdict(list)
    for t, s in run.latency["/ask"]:
        minutes[int((t - began) // 60)].append(s)
    worst = max((percentile(v, .95) for v in minutes.values()), default=0)
    print("/ask p95 by minute (ms): " + " ".join(f"{percentile(v, .95) * 1000:.0f}" for _, v in sorted(minutes.items())))
    print(f"documents written {checks['documents']}, lost {len(checks['lost_documents'])}, "
          f"not found by the running app {len(checks['not_found_by_app'])}")
    print(f"interviews {checks['interviews']}, with lost turns {checks['interviews_with_lost_turns']}")
    for endpoint, messages in run.errors.items():
        for message in sorted(set(messages))[:5]:
            print(f"  {endpoint} error: {message}")
    bad = (any(run.errors.values()) or checks["lost_documents"] or checks["not_found_by_app"]
           or checks["interviews_with_lost_turns"] or worst >= 1.0)
    print("soak: FAILED" if bad else "soak: passed (0 errors, nothing lost, /ask p95 < 1 s in every minute)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
