#!/usr/bin/env python
"""Two `coach serve` replicas on one PostgreSQL, 50 concurrent users: does any turn get lost?

Starts a throwaway PostgreSQL server (initdb in a temporary folder, a free loopback port; see
tests/pgserver.py), two `coach serve` processes on the real corpus with
``COACH_DATABASE_URL`` pointing at it and ``COACH_TRUSTED_HEADER`` set (as behind a reverse
proxy that names the user), then N users at once. Each user does a mock interview of 3
questions (answering every question, follow-ups included, until the coach ends it) and 5 chat
questions; every request goes to a replica picked at random, as a load balancer without
sticky sessions would. At the end it reads the database: each user must have exactly one
finished interview whose turns are numbered 1..n with no gap, every one answered, n equal to
the answers the client sent. Prints p50/p95/max per endpoint and the checks; exits 1 on any
error or mismatch. Loopback only, bounded: users x requests, each with a timeout.

    .venv/bin/python scripts/load_replicas.py                 # 50 users, 2 replicas
    .venv/bin/python scripts/load_replicas.py --users 20
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

HEADER = "X-Forwarded-User"
ANSWER = "先说结论:它让训练更稳定、收敛更快。原因是对输入做了标准化,再用可学习的参数缩放和平移,保留表达能力。"
QUESTIONS = ["BN层为什么要加γ和β?", "LoRA的原理是什么?", "Transformer为什么要除以根号dk?", "什么是梯度消失?",
             "Adam和SGD有什么区别?", "过拟合怎么办?", "交叉熵损失为什么适合分类?", "今天天气怎么样"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=50, help="Concurrent users (default 50).")
    p.add_argument("--replicas", type=int, default=2, help="coach serve processes (default 2).")
    p.add_argument("--questions", type=int, default=3, help="Main questions per interview (default 3).")
    p.add_argument("--chats", type=int, default=5, help="Chat questions per user (default 5).")
    p.add_argument("--port", type=int, default=7890, help="First replica's port (default 7890).")
    p.add_argument("--seed", type=int, default=11)
    return p.parse_args()


def start_replica(port: int, database_url: str) -> subprocess.Popen:
    env = {**os.environ, "COACH_HOME": tempfile.mkdtemp(prefix=f"coach-replica-{port}-"),
           "COACH_DATABASE_URL": database_url, "COACH_TRUSTED_HEADER": HEADER}
    return subprocess.Popen([sys.executable, "-m", "coach", "serve", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ready(url: str, server: subprocess.Popen, minutes: int = 10) -> None:
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"load_replicas: the replica at {url} exited with code {server.returncode}.")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(1)
    sys.exit(f"load_replicas: the replica at {url} did not answer within {minutes} minutes.")


def user_run(name: str, urls: list[str], args, results, errors, sent: dict, start: threading.Barrier) -> None:
    """One user: an interview answered to the end and the chat questions, each call to a random replica."""
    from gradio_client import Client

    rng = random.Random(f"{args.seed}-{name}")
    clients = [Client(u, headers={HEADER: name}, verbose=False, ssl_verify=False) for u in urls]
    start.wait()
    time.sleep(rng.uniform(0, 1.0))

    def call(endpoint: str, *params, **kw):
        began = time.perf_counter()
        try:
            out = rng.choice(clients).submit(*params, **kw, api_name=f"/{endpoint}").result(timeout=120)
        except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
            errors[endpoint].append(f"{type(exc).__name__}: {str(exc)[:120]}")
            return None
        results[endpoint].append(time.perf_counter() - began)
        return out

    chats = rng.sample(QUESTIONS, min(args.chats, len(QUESTIONS)))
    started = call("interview_start", topics=[], difficulty="adaptive", questions=args.questions)
    if started is None:
        return
    token, question = started
    answers = 0
    while question is not None and answers < 4 * args.questions:
        if chats:
            call("ask", chats.pop())
        out = call("interview_answer", token, ANSWER)
        if out is None:
            break  # not retried: a retry could record the answer twice, which is what this checks
        answers += 1
        question = out[1]
    for q in chats:
        call("ask", q)
    sent[name] = answers


def check_database(database_url: str, sent: dict) -> list[str]:
    """Every user: one finished interview, turns 1..n all answered, n = the answers sent."""
    from coach.accounts import user_key
    from coach.history import History

    problems = []
    for name, answers in sorted(sent.items()):
        with History(database_url, user=user_key(name)) as history:
            sessions = history.list_sessions()
            if len(sessions) != 1:
                problems.append(f"{name}: {len(sessions)} sessions")
                continue
            turns = history.turns(sessions[0].id)
            seqs = [t.seq for t in turns]
            if sessions[0].status != "finished":
                problems.append(f"{name}: interview {sessions[0].status}")
            if seqs != list(range(1, len(seqs) + 1)) or not all(t.answered for t in turns):
                problems.append(f"{name}: turns {seqs}, answered {[t.answered for t in turns]}")
            if len(turns) != answers:
                problems.append(f"{name}: {len(turns)} answers stored, {answers} sent")
    return problems


def main() -> int:
    args = parse_args()
    from load_test import print_latencies
    from tests.pgserver import ThrowawayPostgres

    with ThrowawayPostgres() as postgres:
        print(f"load_replicas: PostgreSQL at {postgres.url}; starting {args.replicas} replicas...", flush=True)
        ports = [args.port + n for n in range(args.replicas)]
        servers = [start_replica(port, postgres.url) for port in ports]
        urls = [f"http://127.0.0.1:{port}/" for port in ports]
        try:
            for url, server in zip(urls, servers):
                wait_ready(url, server)
            results, errors, sent = defaultdict(list), defaultdict(list), {}
            names = [f"user{n:03d}" for n in range(args.users)]
            start = threading.Barrier(args.users + 1)
            with ThreadPoolExecutor(args.users) as pool:
                futures = [pool.submit(user_run, name, urls, args, results, errors, sent, start) for name in names]
                start.wait(timeout=300)
                began = time.perf_counter()
                for future in futures:
                    future.result()
                wall = time.perf_counter() - began
        finally:
            for server in servers:
                server.terminate()
            for server in servers:
                server.wait(timeout=30)
        problems = check_database(postgres.url, sent)

    total = sum(len(v) for v in results.values())
    print(f"\n{args.users} users, {args.replicas} replicas, one PostgreSQL: {total} requests in {wall:.1f}s "
          f"({total / wall:.1f}/s)")
    print_latencies(results, errors, wall, width=18)
    complete = len(sent) - len({p.split(':')[0] for p in problems})
    print(f"interviews complete in the database: {complete} of {args.users}; "
          f"answers sent {sum(sent.values())}; problems: {len(problems)}")
    for problem in problems[:10]:
        print(f"  {problem}")
    return 1 if any(errors.values()) or problems or len(sent) != args.users else 0


if __name__ == "__main__":
    sys.exit(main())
