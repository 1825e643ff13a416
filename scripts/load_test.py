#!/usr/bin/env python
"""Load test of the web app's API: N concurrent gradio_client sessions, a fixed number of requests each.

Starts `coach serve` on 127.0.0.1 with the real corpus in its own process
(or drives a running app with --url), then every session asks questions from the bank (a few
paraphrased, a few unrelated so the "nothing found" path runs too) and every
fifth request grades an answer. Prints errors and p50/p95/max latency per
endpoint. Bounded: sessions x requests calls, each with a timeout, to a
loopback address only.

    .venv/bin/python scripts/load_test.py                     # 20 sessions x 10 requests
    .venv/bin/python scripts/load_test.py --sessions 40 --requests 5
    .venv/bin/python scripts/load_test.py --url http://127.0.0.1:7860/ --auth user:pass
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import urllib.request
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

UNRELATED = ["今天天气怎么样", "红烧肉怎么做才好吃", "how do I bake bread"]
ANSWER = "先说结论,再讲原因:它通过标准化和正则化让训练更稳定,收敛更快,也能减轻过拟合。"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", help="A running app (loopback only); default: start one here on the real corpus.")
    p.add_argument("--auth", default=os.environ.get("COACH_AUTH", ""), help="user:pass if the app has a password.")
    p.add_argument("--sessions", type=int, default=20, help="Concurrent client sessions (default 20).")
    p.add_argument("--requests", type=int, default=10, help="Requests per session (default 10).")
    p.add_argument("--grade-every", type=int, default=5, help="Every Nth request is a /grade (default 5).")
    p.add_argument("--think", type=float, default=0.0,
                   help="Mean seconds a session pauses between requests, jittered +-50%% (default 0: back to back).")
    p.add_argument("--port", type=int, default=7871, help="Port for the app started here (default 7871).")
    p.add_argument("--seed", type=int, default=7)
    return p.parse_args()


def start_app(port: int, env: dict | None = None, name: str = "load_test", quiet: bool = False,
              minutes: int = 10) -> tuple[subprocess.Popen, str]:
    """`coach serve` in its own process, as a user runs it (the load generator must not share its GIL).

    Its state goes to a temporary COACH_HOME (unless ``env`` says otherwise) so no user history is
    touched; the index is the usual one unless ``env`` names another."""
    env = {**os.environ, "COACH_HOME": tempfile.mkdtemp(prefix="coach-load-"), **(env or {})}
    out = subprocess.DEVNULL if quiet else None
    server = subprocess.Popen([sys.executable, "-m", "coach", "serve", "--port", str(port)], env=env, cwd=ROOT,
                              stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"{name}: the app exited with code {server.returncode} before it was ready.")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return server, url
        except OSError:
            time.sleep(1)
    server.terminate()
    sys.exit(f"{name}: the app did not answer within {minutes} minutes.")


def workload(seed: int, requests: int, grade_every: int, bank) -> list[tuple[str, dict]]:
    """One session's calls, fixed by the seed: mostly /ask, every ``grade_every``-th a /grade."""
    rng = random.Random(seed)
    items = list(bank.items.values())
    calls = []
    for n in range(1, requests + 1):
        item = rng.choice(items)
        if grade_every and n % grade_every == 0:
            calls.append(("grade", {"question_id": item.id, "answer": ANSWER}))
            continue
        question = rng.choice([item.question, item.question, *item.asks[:1], rng.choice(UNRELATED)])
        calls.append(("ask", {"question": question}))
    return calls


def run_session(url: str, auth, calls, start: threading.Barrier, think: float, results, errors, seed: int) -> None:
    """One user: its own client (its own Gradio session), the calls in order, a jittered pause between them."""
    from gradio_client import Client

    rng = random.Random(seed)

    # plain http on loopback has no certificate to verify; with verification on, gradio_client builds a CA store
    # for every request (~50 ms of CPU each), which on a 2-core machine starves the server under test
    client = Client(url, auth=auth, verbose=False, ssl_verify=not url.startswith("http://"))
    start.wait()
    time.sleep(rng.uniform(0, think))  # users do not all arrive at the same instant
    for endpoint, kwargs in calls:
        began = time.perf_counter()
        try:
            job = client.submit(**kwargs, api_name=f"/{endpoint}")
            job.result(timeout=60)
            results[endpoint].append(time.perf_counter() - began)
        except Exception as exc:  # noqa: BLE001 - every failure is counted and shown, none stops the run
            errors[endpoint].append(f"{type(exc).__name__}: {str(exc)[:120]}")
        if think:
            time.sleep(rng.uniform(0.5 * think, 1.5 * think))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def report(results, errors, wall: float, args) -> int:
    print(f"\n{args.sessions} concurrent sessions x {args.requests} requests, think {args.think:g}s, "
          f"wall {wall:.1f}s")
    print_latencies(results, errors, wall)
    return 1 if any(errors.values()) else 0


def print_latencies(results, errors, wall: float, width: int = 10) -> None:
    """Per endpoint: calls that worked and failed, p50/p95/max latency and throughput; then the errors."""
    print(f"{'endpoint':<{width}}{'ok':>6}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'req/s':>8}")
    for endpoint in sorted(set(results) | set(errors)):
        ok = results[endpoint]
        p50, p95, top = ((percentile(ok, 0.5) * 1000, percentile(ok, 0.95) * 1000, max(ok) * 1000) if ok
                         else (0.0, 0.0, 0.0))
        print(f"{endpoint:<{width}}{len(ok):>6}{len(errors[endpoint]):>8}{p50:>9.0f}{p95:>9.0f}{top:>9.0f}"
              f"{len(ok) / wall:>8.1f}")
    for endpoint, messages in errors.items():
        for message in sorted(set(messages))[:5]:
            print(f"  {endpoint} error: {message}")


def main() -> int:
    args = parse_args()
    from coach.bank import Bank
    from coach.config import Settings
    from coach.webapp import parse_auth

    if args.url and urlparse(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("load_test: --url must be a loopback address (127.0.0.1 or localhost).")
    server = None
    if args.url:
        url = args.url
    else:
        print("load_test: starting `coach serve` on the real corpus (the first start embeds the bank)...", flush=True)
        server, url = start_app(args.port)
    bank = Bank.load(Settings.from_env().corpus_dir)
    auth = parse_auth(args.auth)
    results, errors = defaultdict(list), defaultdict(list)
    start = threading.Barrier(args.sessions + 1)
    plans = [workload(args.seed + n, args.requests, args.grade_every, bank) for n in range(args.sessions)]
    try:
        with ThreadPoolExecutor(args.sessions) as pool:
            futures = [pool.submit(run_session, url, auth, plan, start, args.think, results, errors, args.seed + n)
                       for n, plan in enumerate(plans)]
            start.wait(timeout=120)
            began = time.perf_counter()
            for future in futures:
                future.result()
            wall = time.perf_counter() - began
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    return report(results, errors, wall, args)


if __name__ == "__main__":
    sys.exit(main())
