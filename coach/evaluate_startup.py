"""How fast the coach starts: whole processes, cold, as a user runs them.

Each command runs ``runs`` times as a fresh process (``python -m coach ...``),
after one untimed run that builds the index if it is missing (the targets are
for a coach that has been used once). Wall time is measured around the
process, peak memory is the child's own maximum resident set size
(``os.wait4``). ``coach serve`` is timed from launch until its page answers
HTTP 200 on a free loopback port, then stopped.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

QUERY = "BN层为什么要加γ和β?"
ANSWER = "BN标准化后分布被固定，γ和β让网络能学回需要的尺度和偏移，必要时还原原来的分布，保留表达能力。"
COMMANDS = {
    "search": ["search", QUERY, "-k", "1"],
    "ask": ["ask", QUERY],
    "grade": ["grade", "--question", QUERY, "--answer", ANSWER],
}


def _run(args: list[str], env: dict) -> tuple[float, float]:
    """(seconds, peak MB) of one whole process."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "coach", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"coach {' '.join(args)} failed: {proc.stderr.read().decode(errors='replace')[-500:]}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KB on Linux


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(env: dict, timeout: float = 120.0) -> float:
    """Seconds from launching ``coach serve`` until its page answers."""
    port = _free_port()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "coach", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < timeout:
            if proc.poll() is not None:
                raise RuntimeError("coach serve exited before it was ready")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"coach serve was not ready within {timeout:.0f} s")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def evaluate_startup(runs: int = 5, serve_runs: int = 3, progress=None) -> list[dict]:
    env = dict(os.environ)
    _run(COMMANDS["search"], env)  # builds the index if there is none; not timed
    rows = []
    total = len(COMMANDS) * runs + serve_runs
    done = 0
    for name, args in COMMANDS.items():
        times, peaks = [], []
        for _ in range(runs):
            seconds, peak = _run(args, env)
            times.append(seconds)
            peaks.append(peak)
            done += 1
            if progress:
                progress("timing", done, total)
        rows.append({"command": f"coach {name}", "runs": runs, "median_s": round(statistics.median(times), 2),
                     "max_s": round(max(times), 2), "peak_mb": round(max(peaks))})
    if serve_runs:
        times = []
        for _ in range(serve_runs):
            times.append(_serve(env))
            done += 1
            if progress:
                progress("timing", done, total)
        rows.append({"command": "coach serve (ready)", "runs": serve_runs,
                     "median_s": round(statistics.median(times), 2), "max_s": round(max(times), 2), "peak_mb": "-"})
    return rows
