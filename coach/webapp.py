"""The browser app: chat, mock interview, grading, knowledge base and progress in one Gradio page.

``coach serve`` calls :func:`serve`. The module only wires widgets to engine
calls; every string it shows lives in ``resources/webapp.yaml``.

Design:

- One :class:`Coach` per process holds what is expensive and shared: the
  knowledge base (models loaded once at start-up, progress printed to the
  terminal), the grader and the chat engine. Writes to the index (upload,
  remove, rebuild) take one lock; searches keep using the previous index
  generation while a write runs.
- Everything that belongs to one browser tab (chat turns, the interview in
  progress, its clock) lives in ``gr.State``, so two people never see each
  other's conversation. API clients have no browser state: their interviews
  are kept server-side under an unguessable token (``secrets.token_urlsafe``)
  in a bounded store that forgets the oldest first.
- A ``CoachError`` is the user's to fix: every handler catches it and shows
  its one sentence (in Chinese, see ``messages`` in the strings file) as a
  warning or, for API clients, as the error message. Anything else is a bug
  and Gradio shows a generic error without a traceback.
- Safe defaults: bound to 127.0.0.1, no share link, optional password, an
  upload size limit, input length limits, a bounded queue, and Markdown
  rendered with Gradio's HTML sanitizer (document text is untrusted).

Compromises: the interview and progress tabs read SQLite history through a
fresh ``History`` connection per call (SQLite connections are per thread and
Gradio runs handlers on a thread pool); a rebuild re-reads the documents the
web app stored under ``COACH_HOME/documents`` when they were uploaded.
"""

from __future__ import annotations

import html
import json
import os
import re
import secrets
import shutil
import sys
import threading
import time
from collections import deque
from datetime import timedelta
from dataclasses import asdict
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import gradio as gr
import yaml

from .config import RESOURCES, Settings
from .errors import CoachError, InputError
from .limits import MAX_UPLOAD_MB, check_answer, check_query

UPLOAD_SUFFIXES = (".txt", ".md", ".html", ".pdf", ".docx")
QUEUE_CONCURRENCY, QUEUE_MAX = 4, 64
API_SESSIONS_PER_CLIENT = 32  # open API interviews per client (users behind one address share it); its own least recently used one is stopped first
INTERVIEW_IDLE = timedelta(hours=6)  # an interview untouched this long is closed in the history
LOGIN_FAILURES, LOGIN_WINDOW_S = 5, 60.0  # wrong passwords per client before it has to wait
CHAT_TURNS_KEPT = 50  # per browser tab


# ---- strings ----------------------------------------------------------------------
@lru_cache(maxsize=1)
def strings() -> dict:
    return yaml.safe_load((RESOURCES / "webapp.yaml").read_text(encoding="utf-8"))


def t(path: str, **values) -> Any:
    """The string at ``path`` ("chat.send") with ``{placeholders}`` filled."""
    node: Any = strings()
    for key in path.split("."):
        node = node[key]
    return node.format(**values) if values and isinstance(node, str) else node


def message_for(exc: CoachError) -> str:
    """The error's one sentence in Chinese when the strings file knows it, else as it is."""
    text = str(exc)
    for rule in strings()["messages"]:
        match = re.search(rule["pattern"], text)
        if match:
            return rule["text"].format(**match.groupdict())
    return text


def warn(exc: CoachError) -> None:
    """Show a user's error as a toast; its text may name an uploaded file, so it is escaped."""
    gr.Warning(html.escape(message_for(exc)), title=t("warning_title"))


def api_error(exc: CoachError):
    return gr.Error(message_for(exc), title=t("error_title"), print_exception=False)


def difficulty_name(level: int | str | None) -> str:
    return strings()["difficulty"].get(int(level), str(level)) if str(level).isdigit() else str(level or "")


# ---- shared services --------------------------------------------------------------------
class TerminalProgress:
    """The knowledge base's progress callback for start-up: a line per stage on stderr."""

    def __init__(self):
        self.last: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last.get(stage, 0) < 2:
            return
        self.last[stage] = now
        print(f"coach: {stage} {done}/{total}", file=sys.stderr, flush=True)


class Coach:
    """What every browser session and API client shares: one knowledge base, grader and chat engine."""

    def __init__(self, settings: Settings | None = None, log=None):
        from .chat import ChatEngine
        from .grade import Grader
        from .knowledge import KnowledgeBase
        from .llm import make_llm

        log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        started = time.monotonic()
        log("coach: loading the question bank, the embedding model and the index (the first start embeds the bank)...")
        self.startup_progress = TerminalProgress()
        self.kb = KnowledgeBase(settings or Settings.from_env(), progress=self.startup_progress)
        self.settings = self.kb.settings
        self.kb.data  # noqa: B018 - builds or loads the index now, not on the first request
        self.kb.retriever  # noqa: B018
        self.kb.refresh_in_background = True  # a new generation is loaded beside the requests, not in one
        self.llm = make_llm(self.settings)
        self.grader = Grader(self.kb, llm=self.llm)
        self.chat = ChatEngine(self.kb, self.llm)
        self.write_lock = threading.Lock()
        self.interviews = ApiInterviews(self.settings)
        self.ingest_worker = IngestWorker(self.settings)
        self.documents_dir = self.settings.home / "documents"
        self.reports_dir = self.settings.home / "web-reports"  # the CLI writes to reports/, never served
        self.kb.search("BN", k=1)  # warm the query path (never the LLM) so the first user does not wait
        log(f"coach: ready in {time.monotonic() - started:.1f}s: {len(self.kb.bank.items)} questions, "
            f"{len(self.kb.sources())} documents")

    # ---- reading ------------------------------------------------------------------
    def summary(self) -> str:
        mode = t("mode_llm", model=self.llm.id) if self.llm else t("mode_offline")
        return t("summary", items=len(self.kb.bank.items), topics=len(self.kb.bank.topics),
                 docs=len(self.kb.sources()), mode=mode)

    def topic_name(self, topic: str) -> str:
        found = self.kb.catalog.topics.get(topic)
        return found.zh if found else topic

    def topic_choices(self) -> list[tuple[str, str]]:
        """Bank topics, then "my documents" and each document that has questions."""
        return [(tp.zh, tp.id) for tp in self.kb.catalog.topics.values()]

    def source_rows(self) -> list[list]:
        return [[name, info["chunks"]] for name, info in sorted(self.kb.sources().items())]

    # ---- writing (one at a time) ----------------------------------------------------
    def add_documents(self, paths: list[Path], progress=None, replace: bool = False):
        """Ingest uploads (type-checked) in a worker process, keeping a copy of each for rebuilds.

        The worker (``coach ingest --worker``) reads, chunks and embeds at low priority under
        memory and time limits, so chat and grading stay fast while a file is processed and a
        hostile file cannot take the server down. It writes a new index generation, which this
        process picks up on its next search. Returns the engine's report."""
        from .knowledge import IngestReport

        report, accepted = IngestReport(), []
        for path in paths:
            problem = upload_problem(path)
            if problem:
                report.errors[path.name] = problem
            else:
                accepted.append(path)
        if accepted:
            result = self.ingest_worker.run(accepted, replace, progress)
            for path in accepted:
                if path.name in result.added:
                    self._keep_copy(path)
            report.added.update(result.added)
            report.unchanged += result.unchanged
            report.replaced += result.replaced
            report.errors.update(result.errors)
            self.kb.refresh()  # the uploader sees its documents at once; other requests never wait
        return report

    def remove_document(self, name: str) -> int:
        with self.write_lock:
            removed = self.kb.remove_source(name)
            self.kb.retriever  # noqa: B018
        shutil.rmtree(self._copy_dir(name), ignore_errors=True)
        return removed

    def rebuild(self, progress=None) -> dict:
        """A fresh index of the bank plus every uploaded document the app kept a copy of."""
        with self.write_lock:
            names = sorted(self.kb.sources())
            copies = {n: self._copy_dir(n) / n for n in names}
            missing = [n for n, p in copies.items() if not p.is_file()]
            if missing:
                raise CoachError(t("kb.rebuild_missing", names="、".join(missing)))
            with self._progress_to(progress):
                self.kb.build(list(copies.values()))
                self.kb.retriever  # noqa: B018
        return self.kb.data.manifest()["counts"]

    # ---- interviews (a fresh History connection per call: SQLite connections are per thread) ----
    def start_interview(self, config) -> tuple[str, Any]:
        """A new session's id and its first question; sessions left idle too long are closed first."""
        from .history import History, utcnow
        from .interview import InterviewSession

        with History.open(self.settings) as history:
            history.close_abandoned(INTERVIEW_IDLE, utcnow())
            session = InterviewSession.start(self.kb, self.grader, history, config)
            return session.id, session.current

    def answer_interview(self, session_id: str, text: str):
        """The graded ``TurnResult``; the session's clock gives the elapsed time."""
        with self._session(session_id) as session:
            return session.answer(check_answer(text))

    def current_question(self, session_id: str):
        with self._session(session_id) as session:
            return session.current

    def stop_interview(self, session_id: str) -> None:
        with self._session(session_id) as session:
            session.stop()

    def interview_report(self, session_id: str):
        with self._session(session_id) as session:
            return session.report()

    def save_report(self, report) -> Path:
        """The report as Markdown in a file whose name is random, never taken from what a user typed."""
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        path = self.reports_dir / f"interview-report-{secrets.token_urlsafe(12)}.md"
        path.write_text(report.to_markdown(), encoding="utf-8")
        return path

    def _session(self, session_id: str):
        return _OpenSession(self, session_id)

    # ---- history ----------------------------------------------------------------------
    def progress(self) -> dict:
        """Sessions, per-topic summaries, per-session topic means over time, and the items due."""
        from .history import History
        from .interview import due_items

        with History.open(self.settings) as history:
            sessions = history.list_sessions(limit=50)
            timeline = []
            for summary in sessions:
                by_topic: dict[str, list[float]] = {}
                for turn in history.turns(summary.id):
                    if turn.answered:
                        by_topic.setdefault(turn.topic, []).append(turn.score)
                timeline += [(summary.started_at, topic, sum(s) / len(s)) for topic, s in by_topic.items()]
            return {"sessions": sessions, "topics": history.topic_progress(), "timeline": timeline,
                    "due": due_items(history, self.kb.bank)}

    def _copy_dir(self, name: str) -> Path:
        # the folder is named by a hash of the source name, never by the name itself
        import hashlib

        return self.documents_dir / hashlib.sha256(name.encode("utf-8")).hexdigest()[:24]

    def _keep_copy(self, path: Path) -> None:
        folder = self._copy_dir(path.name)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / path.name)

    def _progress_to(self, progress):
        return _ProgressBridge(self.kb, progress, self.startup_progress)


class _ProgressBridge:
    """Points the knowledge base's progress callback at one request's ``gr.Progress`` while it writes."""

    def __init__(self, kb, progress, fallback):
        self.kb, self.progress, self.fallback = kb, progress, fallback

    def __enter__(self):
        if self.progress is not None:
            stages = t("kb.stages")
            self.kb.progress = lambda stage, done, total: self.progress(
                (done, total), desc=stages.get(stage, stage), unit="")
        return self

    def __exit__(self, *exc):
        self.kb.progress = self.fallback


class _OpenSession:
    """``with coach._session(id) as session``: the stored interview on a connection of this thread."""

    def __init__(self, coach: Coach, session_id: str):
        self.coach, self.session_id = coach, session_id

    def __enter__(self):
        from .history import History
        from .interview import InterviewSession

        self.history = History.open(self.coach.settings)
        record = self.history.session(str(self.session_id or ""))
        if record is None:
            self.history.close()
            raise InputError("unknown interview session token")
        return InterviewSession(self.coach.kb, self.coach.grader, self.history, record)

    def __exit__(self, *exc):
        self.history.close()


def upload_problem(path: Path) -> str | None:
    """One sentence when an upload is of the wrong type or too large, else None."""
    if path.suffix.lower() not in UPLOAD_SUFFIXES:
        return t("kb.bad_type")
    try:
        if path.stat().st_size > MAX_UPLOAD_MB * 2**20:
            return t("kb.too_big", mb=MAX_UPLOAD_MB)
    except OSError:
        return message_for(CoachError(f"Cannot read {path.name};"))
    return None


class ApiInterviews:
    """Interviews of API clients by token, kept in the history file (they survive a restart).

    The client gets an unguessable token; only its SHA-256 is stored. Each client (the user
    name with a login, else the address) keeps at most ``API_SESSIONS_PER_CLIENT`` open
    interviews: starting another stops its own least recently used one, never another
    client's. Interviews idle for ``INTERVIEW_IDLE`` are closed in the history."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @staticmethod
    def _hash(token: str) -> str:
        import hashlib

        return hashlib.sha256(token.encode("utf-8")).hexdigest()

    def add(self, session_id: str, client: str) -> str:
        from .history import History, utcnow

        token = secrets.token_urlsafe(24)
        with History.open(self.settings) as history:
            history.add_token(self._hash(token), session_id, client, utcnow(), API_SESSIONS_PER_CLIENT)
        return token

    def get(self, token) -> str:
        from .history import History, utcnow
        from .limits import check_id

        token = check_id(token, "The interview token")
        with History.open(self.settings) as history:
            session_id = history.session_for_token(self._hash(token), utcnow()) if token else None
        if session_id is None:
            raise InputError("unknown interview session token")
        return session_id


def client_of(request) -> str:
    """Who is calling: the logged-in user, else the client's address."""
    if request is None:
        return "local"
    user = getattr(request, "username", None)
    if user:
        return f"user:{user}"
    client = getattr(request, "client", None)
    return f"addr:{getattr(client, 'host', None) or 'unknown'}"


class IngestWorker:
    """A long-lived child process (``coach ingest-worker``) that reads, chunks and embeds uploads.

    It runs at low priority under a memory limit, so chat and grading stay fast while a file is
    processed and a hostile file cannot take the server down; it keeps its embedding model
    loaded, so an upload does not wait for a model to load. Jobs go one at a time as JSON lines
    over its stdin; it answers with progress lines and one result line. A worker that died (a
    file that hit the memory limit) is started again for the next job. Results are written as
    a new index generation, which the app's knowledge base picks up on its next search."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.child = None
        self.lock = threading.Lock()

    def _start(self):
        import subprocess

        env = {**os.environ, "COACH_CORPUS": str(self.settings.corpus_dir), "COACH_INDEX_DIR": str(self.settings.index_dir),
               "COACH_HOME": str(self.settings.home), "COACH_EMBEDDER": self.settings.embedder,
               "COACH_RERANKER": self.settings.reranker}
        self.child = subprocess.Popen([sys.executable, "-m", "coach", "ingest-worker"], env=env, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, encoding="utf-8",
                                      errors="replace", bufsize=1)

    def run(self, paths: list[Path], replace: bool, progress=None):
        from .errors import IngestError
        from .knowledge import IngestReport

        stages = t("kb.stages")
        with self.lock:
            if self.child is None or self.child.poll() is not None:
                self._start()
            try:
                self.child.stdin.write(json.dumps({"paths": [str(p) for p in paths], "replace": replace}) + "\n")
                self.child.stdin.flush()
                for line in self.child.stdout:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if "stage" in event and progress is not None:
                        progress((event.get("done", 0), event.get("total", 0)),
                                 desc=stages.get(event["stage"], event["stage"]), unit="")
                    elif "error" in event:
                        raise CoachError(event["error"])
                    elif "added" in event:
                        return IngestReport(added=event["added"], unchanged=event["unchanged"], errors=event["errors"],
                                            replaced=event["replaced"])
            except (BrokenPipeError, OSError):
                pass
            self.child = None  # it died mid-job: the next upload starts a fresh one
            raise IngestError("The upload could not be processed (the worker stopped, perhaps out of memory); "
                              "try a smaller file.")

    def close(self) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.stdin.close()
            try:
                self.child.wait(timeout=5)
            except Exception:
                self.child.kill()


class LoginThrottle:
    """ASGI middleware: a client that sends ``LOGIN_FAILURES`` wrong passwords within
    ``LOGIN_WINDOW_S`` seconds gets 429 on /login until the window has passed (even with the
    right password), so passwords cannot be guessed at speed; other clients are not affected."""

    def __init__(self, app):
        self.app = app
        self.failures: dict[str, deque] = {}
        self.lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or not scope.get("path", "").rstrip("/").endswith("/login"):
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("unknown", 0))[0]
        now = time.monotonic()
        with self.lock:
            recent = self.failures.setdefault(client, deque())
            while recent and now - recent[0] > LOGIN_WINDOW_S:
                recent.popleft()
            wait = LOGIN_WINDOW_S - (now - recent[0]) if len(recent) >= LOGIN_FAILURES else 0
        if wait > 0:
            body = json.dumps({"detail": f"Too many wrong passwords; wait {int(wait) + 1} seconds and try again."}).encode()
            await send({"type": "http.response.start", "status": 429,
                        "headers": [(b"content-type", b"application/json"), (b"retry-after", str(int(wait) + 1).encode())]})
            await send({"type": "http.response.body", "body": body})
            return

        async def record(message):
            if message["type"] == "http.response.start" and message["status"] in (400, 401):
                with self.lock:
                    self.failures.setdefault(client, deque()).append(time.monotonic())
            await send(message)

        return await self.app(scope, receive, record)


# ---- turning engine results into Markdown and JSON (pure functions) -------------------------------
def source_label(source) -> str:
    return t("chat.bank_label", item_id=source.item_id) if source.kind == "bank" else source.label


def sources_markdown(sources) -> str:
    """The expandable block under an answer: a line per source with its role, label, relevance and snippet."""
    lines = []
    for s in sources:
        snippet = " ".join(s.snippet.split())[:180]
        lines.append(t("chat.source_line", n=s.n, role=t(f"chat.role_{s.role}"), label=source_label(s),
                       title=" ".join(s.title.split()), relevance=f"{s.relevance:.2f}"))
        lines.append(f"> {snippet}…\n" if snippet else "")
    return "\n".join(lines)


def answer_json(answer) -> dict:
    return {"question": answer.question, "query": answer.query, "grounded": answer.grounded, "model": answer.model,
            "relevance": answer.relevance, "llm_note": answer.llm_note,
            "sources": [asdict(s) | {"label": source_label(s)} for s in answer.sources]}


_CODE = re.compile(r"(```.*?(?:```|$)|`[^`\n]*`)", re.S)


def escape_html(markdown: str) -> str:
    """Markdown with any HTML in it shown as text, not run: '<' and '>' are escaped outside code
    (inside code Markdown already shows them as they are). Answers carry text the coach did not
    write: a model's output, a user's document."""
    parts = _CODE.split(markdown)
    return "".join(part if i % 2 else part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                   for i, part in enumerate(parts))


def chat_history(messages: list[dict]) -> list[dict]:
    """The conversation as plain user/assistant turns for a model (the sources blocks left out)."""
    return [{"role": m["role"], "content": m["content"]} for m in messages
            if isinstance(m, dict) and not m.get("metadata") and isinstance(m.get("content"), str)]


def chat_messages(question: str, answer, final: bool) -> list[dict]:
    """One chat turn as Chatbot messages; the sources become a collapsed block once the answer is complete."""
    text = escape_html(answer.text)
    if answer.query != answer.question:
        text = t("chat.rewritten", query=answer.query) + "\n\n" + text
    turn = [{"role": "user", "content": question}, {"role": "assistant", "content": text}]
    if final and answer.sources:
        turn.append({"role": "assistant", "content": sources_markdown(answer.sources),
                     "metadata": {"title": t("chat.sources_title", n=len(answer.sources)), "status": "done"}})
    return turn


def basis_text(grade) -> str:
    names = "、".join(dict.fromkeys(str(s.get("source")) for s in grade.sources)) or "-"
    if grade.basis == "bank":
        return t("grade.basis_bank", item_id=grade.item_id)
    if grade.basis == "document":
        return t("grade.basis_document", sources=names)
    return t("grade.basis_none")


def point_source(source: str) -> str:
    return t("chat.bank_label", item_id=source.removeprefix("bank:")) if source.startswith("bank:") else source


def score_markdown(grade) -> str:
    head = (t("grade.no_score_line", verdict=grade.verdict) if grade.score is None
            else t("grade.score_line", score=f"{grade.score:.1f}", verdict=grade.verdict))
    return head + "\n\n" + t("grade.question_line", question=grade.question, basis=basis_text(grade))


def grade_details_markdown(grade, model_answer: bool = True) -> str:
    """Covered and missed points, misconceptions, feedback and (optionally) the model answer."""
    parts = []
    if grade.covered:
        parts.append(t("grade.covered") + "\n" + "\n".join(
            t("grade.covered_item", point=p.point, evidence=p.evidence or "") for p in grade.covered))
    if grade.missing:
        parts.append(t("grade.missing") + "\n" + "\n".join(
            t("grade.missing_item", point=p.point, source=point_source(p.source)) for p in grade.missing))
    if grade.misconceptions:
        parts.append(t("grade.misconceptions") + "\n" + "\n".join(
            t("grade.misconception_item", sentence=m.sentence, correction=m.correction) for m in grade.misconceptions))
    if grade.feedback:
        parts.append(t("grade.feedback") + "\n" + "\n".join(f"- {line}" for line in grade.feedback))
    if getattr(grade, "llm_feedback", ""):
        parts.append(t("grade.llm_feedback") + "\n\n" + escape_html(grade.llm_feedback))
    if getattr(grade, "second_opinion", None):
        parts.append(t("grade.second_opinion", score=f"{grade.second_opinion['score']:.1f}",
                       reason=escape_html(grade.second_opinion["reason"])))
    if getattr(grade, "llm_note", ""):
        parts.append(f"_{grade.llm_note}_")
    if model_answer and grade.model_answer:
        parts.append(t("grade.model_answer") + "\n\n" + grade.model_answer.strip())
    return "\n\n".join(parts)


def highlighted_answer(answer: str, grade) -> list[tuple[str, str | None]]:
    """The answer cut into (text, label) pieces: covered evidence and misconception sentences marked.

    >>> from types import SimpleNamespace as N
    >>> g = N(covered=[N(evidence="BN做标准化。")], misconceptions=[])
    >>> highlighted_answer("BN做标准化。其他。", g)
    [('BN做标准化。', '命中要点'), ('其他。', None)]
    """
    marks = [(m.sentence, t("grade.misconception_label")) for m in grade.misconceptions]
    marks += [(p.evidence, t("grade.covered_label")) for p in grade.covered if p.evidence]
    spans: list[tuple[int, int, str]] = []
    for sentence, label in marks:
        start = answer.find(sentence)
        if start >= 0 and not any(a < start + len(sentence) and start < b for a, b, _ in spans):
            spans.append((start, start + len(sentence), label))
    pieces, at = [], 0
    for start, end, label in sorted(spans):
        if start > at:
            pieces.append((answer[at:start], None))
        pieces.append((answer[start:end], label))
        at = end
    if at < len(answer):
        pieces.append((answer[at:], None))
    return pieces


def question_json(question, topic_name: str = "") -> dict | None:
    if question is None:
        return None
    return {"seq": question.seq, "kind": question.kind, "item_id": question.item_id, "text": question.text,
            "topic": question.topic, "topic_name": topic_name or question.topic, "difficulty": question.difficulty,
            "time_limit": question.time_limit, "asked_at": question.asked_at.isoformat()}


def turn_json(result) -> dict:
    return {"score": result.score, "verdict": result.grade.verdict, "elapsed": round(result.elapsed, 1),
            "timed_out": result.timed_out, "follow_up": result.follow_up, "finished": result.finished,
            "grade": result.grade.to_json()}


def interview_config(topics, difficulty, questions, time_limit, review_only: bool = False):
    """An ``InterviewConfig`` from form or API values (the engine checks them)."""
    from .interview import ADAPTIVE, InterviewConfig

    from .limits import check_ids

    level = difficulty if isinstance(difficulty, int) else str(difficulty or ADAPTIVE).strip()[:20]
    if isinstance(level, str) and level.isdigit():
        level = int(level)
    return InterviewConfig(tuple(check_ids(topics)), level, 5 if questions in (None, "") else questions,
                           None if time_limit in (None, "", 0, "0") else time_limit, bool(review_only))


# ---- named API endpoints (gradio_client: Client(url).predict(..., api_name="/ask")) ------------------
def register_api(coach: Coach) -> None:
    """/ask, /grade, /interview_start, /interview_answer and /interview_report; documented in docs/webapp.md.

    Every field is checked for type and length before any work (``coach.limits``); a user's
    mistake comes back as one sentence, and a bug as one generic sentence with its traceback
    in the server's log only."""
    from .limits import check_answer, check_history, check_id, check_previous, check_query

    def ask(question: str, previous: str = "", history: list | None = None, request: gr.Request = None) -> tuple[str, dict]:
        """Answer a question from the knowledge base. `previous`: the previous question, for follow-ups like "那LN呢?";
        `history`: the conversation so far as [{"role": "user"|"assistant", "content": ...}] (used by a configured
        model; the last 6 are kept). Returns the answer as Markdown and {"query", "grounded", "model", "sources": [...]}."""
        with api_errors():
            answer = coach.chat.answer(check_query(question), check_previous(previous) or None, check_history(history))
            return answer.text, answer_json(answer)

    def grade(question: str = "", answer: str = "", question_id: str = "", request: gr.Request = None) -> dict:
        """Grade `answer` against a bank item (`question_id`) or a free-text `question`. Returns the grade as JSON."""
        with api_errors():
            item_id = check_id(question_id, "The question id") or None
            text = check_query(question) if (question and not item_id) else None
            return coach.grader.grade(check_answer(answer), item_id=item_id, question=text).to_json()

    def interview_start(topics: list[str] | None = None, difficulty: str = "adaptive", questions: int = 5,
                        time_limit: float = 0, review_only: bool = False, request: gr.Request = None) -> tuple[str, dict]:
        """Start a mock interview. Returns a session token (keep it secret) and the first question."""
        with api_errors():
            session_id, question = coach.start_interview(
                interview_config(topics, difficulty, questions, time_limit, review_only is True))
            token = coach.interviews.add(session_id, client_of(request))
            return token, question_json(question, coach.topic_name(question.topic))

    def interview_answer(token: str, answer: str, request: gr.Request = None) -> tuple[dict, dict | None]:
        """Answer the current question. Returns the graded turn and the next question (null when finished)."""
        with api_errors():
            result = coach.answer_interview(coach.interviews.get(token), check_answer(answer))
            nxt = result.next
            return turn_json(result), question_json(nxt, coach.topic_name(nxt.topic) if nxt else "")

    def interview_report(token: str, request: gr.Request = None) -> tuple[str, dict]:
        """The session's report as Markdown and as JSON (works before the end too)."""
        with api_errors():
            report = coach.interview_report(coach.interviews.get(token))
            return report.to_markdown(), report.to_json()

    for fn in (ask, grade, interview_start, interview_answer, interview_report):
        gr.api(fn, api_name=fn.__name__)


@contextmanager
def api_errors():
    """A ``CoachError`` becomes its sentence for the client; anything else is logged with its
    traceback and the client gets one generic sentence."""
    try:
        yield
    except CoachError as exc:
        raise api_error(exc) from None
    except gr.Error:
        raise
    except Exception:
        import traceback

        traceback.print_exc()
        raise gr.Error("Something went wrong on the server while handling this request; try again, "
                       "and report it if it keeps happening.", print_exception=False) from None


# ---- the page ----------------------------------------------------------------------------------------
CSS = """
#iv-countdown p { font-size: 1.25rem; margin: 0; }
#grade-score h2, #iv-grade h2 { margin-bottom: 0.2rem; }
.coach-header h1 { margin-bottom: 0.1rem; }
footer { opacity: 0.6; }
"""


def toast_css() -> str:
    """Gradio titles its toasts "Warning"/"Error" in English; show the strings file's titles instead."""
    rules = [f'.toast-title.{level} {{ font-size: 0 !important; }}\n'
             f'.toast-title.{level}::before {{ content: "{title}"; font-size: var(--text-md); }}'
             for level, title in t("toast_titles").items()]
    return "\n".join(rules)


def build_app(coach: Coach):
    """The whole page: five tabs over one ``Coach``; each browser tab keeps its own ``gr.State``."""
    with gr.Blocks(title=t("title"), analytics_enabled=False) as app:
        header = gr.Markdown(t("header", summary=coach.summary()), elem_classes="coach-header")
        with gr.Tabs() as tabs:
            with gr.Tab(t("tabs.chat"), id="chat", elem_id="tab-chat"):
                chat_tab(coach)
            with gr.Tab(t("tabs.interview"), id="interview", elem_id="tab-interview") as interview_page:
                interview = interview_tab(coach)
            with gr.Tab(t("tabs.grade"), id="grade", elem_id="tab-grade"):
                grade_tab(coach)
            with gr.Tab(t("tabs.kb"), id="kb", elem_id="tab-kb"):
                knowledge_tab(coach, header)
            with gr.Tab(t("tabs.progress"), id="progress", elem_id="tab-progress") as progress:
                progress_tab(coach, app, progress, tabs, interview)
        # documents uploaded since the page was built add topics ("我的资料 · notes.md")
        gr.on([interview_page.select, app.load], lambda: gr.Dropdown(choices=coach.topic_choices()), None,
              interview["topics"], api_visibility="private", show_progress="hidden")
        register_api(coach)
    return app


# ---- 问答 ----------------------------------------------------------------------------------------------
def example_questions(coach: Coach, n: int = 4) -> list[str]:
    """The first question of each of the first topics, so the examples always exist in the bank."""
    firsts = {}
    for item in coach.kb.bank.items.values():
        firsts.setdefault(item.topic, item.question)
    return list(firsts.values())[:n]


def chat_tab(coach: Coach) -> None:
    gr.Markdown(t("chat.intro"))
    state = gr.State({"messages": [], "previous": None})
    bot = gr.Chatbot(show_label=False, height=540, placeholder=t("chat.placeholder"), buttons=["copy"],
                     feedback_options=None, elem_id="chat-bot")
    with gr.Row():
        box = gr.Textbox(show_label=False, placeholder=t("chat.input_placeholder"), scale=8, max_lines=4,
                         elem_id="chat-input")
        send = gr.Button(t("chat.send"), variant="primary", scale=1, min_width=80, elem_id="chat-send")
        clear = gr.Button(t("chat.clear"), scale=1, min_width=80, elem_id="chat-clear")
    gr.Examples([[q] for q in example_questions(coach)], inputs=[box], label=t("chat.examples"))

    def respond(message: str, chat: dict):
        """Stream one answer; the conversation so far is this browser tab's own state."""
        before = list(chat["messages"])
        question = (message or "").strip()
        answer = None
        try:
            for answer in coach.chat.stream(message, chat["previous"], chat_history(before)):
                yield "", before + chat_messages(question, answer, final=False), gr.skip()
        except CoachError as exc:
            warn(exc)
            yield gr.skip(), (before + chat_messages(question, answer, final=True)) if answer else gr.skip(), gr.skip()
            return
        after = (before + chat_messages(question, answer, final=True))[-3 * CHAT_TURNS_KEPT:]
        yield "", after, {"messages": after, "previous": answer.query}

    gr.on([box.submit, send.click], respond, [box, state], [box, bot, state], api_visibility="private",
          show_progress="minimal")
    clear.click(lambda: ([], {"messages": [], "previous": None}, ""), None, [bot, state, box],
                api_visibility="private", queue=False)


# ---- 答案评分 ----------------------------------------------------------------------------------------
def bank_choices(coach: Coach) -> list[tuple[str, str]]:
    """Every question that can be graded: the bank's, then those of the user's documents."""
    catalog = coach.kb.catalog
    order = {topic: n for n, topic in enumerate(catalog.topics)}
    items = sorted(catalog.items.values(), key=lambda i: (order.get(i.topic, 999), i.difficulty, i.id))
    return [(t("grade.choice", topic=coach.topic_name(i.topic), difficulty=difficulty_name(i.difficulty),
               question=i.question), i.id) for i in items]


def grade_tab(coach: Coach) -> None:
    gr.Markdown(t("grade.intro"))
    with gr.Row():
        with gr.Column(scale=1):
            pick = gr.Dropdown(bank_choices(coach), value=None, label=t("grade.pick"), filterable=True,
                               elem_id="grade-pick")
            custom = gr.Textbox(label=t("grade.custom"), placeholder=t("grade.custom_placeholder"), max_lines=3,
                                elem_id="grade-custom")
            answer = gr.Textbox(label=t("grade.answer"), placeholder=t("grade.answer_placeholder"), lines=9,
                                elem_id="grade-answer")
            submit = gr.Button(t("grade.submit"), variant="primary", elem_id="grade-submit")
        with gr.Column(scale=1):
            score = gr.Markdown(elem_id="grade-score")
            marked = gr.HighlightedText(label=t("grade.highlight"), show_legend=True, elem_id="grade-highlight",
                                        color_map={t("grade.covered_label"): "green",
                                                   t("grade.misconception_label"): "red"})
    details = gr.Markdown(elem_id="grade-details")

    def run(item_id: str | None, question: str, text: str):
        if not (question or "").strip() and not item_id:
            gr.Warning(t("grade.need_question"), title=t("warning_title"))
            return gr.skip()
        try:
            if (question or "").strip():
                result = coach.grader.grade(text, question=question)
            else:
                result = coach.grader.grade(text, item_id=item_id)
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        return score_markdown(result), highlighted_answer(text or "", result), grade_details_markdown(result)

    submit.click(run, [pick, custom, answer], [score, marked, details], api_visibility="private")


# ---- 知识库 --------------------------------------------------------------------------------------------
def report_markdown(report) -> str:
    """Per-file results of an upload; file names are the user's text, so they are escaped."""
    name = html.escape
    lines = [t("kb.added", name=name(n), chunks=c) for n, c in report.added.items()]
    lines = [t("kb.replaced", name=name(n)) if n in report.replaced else line
             for n, line in zip(report.added, lines)]
    lines += [t("kb.unchanged", name=name(n)) for n in report.unchanged]
    lines += [t("kb.failed", name=name(n), message=name(_without_name(message_for(CoachError(m)), n)))
              for n, m in report.errors.items()]
    return "\n\n".join(lines)


def _without_name(message: str, name: str) -> str:
    """"empty.md 是空文件…" under the heading "empty.md" reads as "是空文件…": the name is said once."""
    return message[len(name):].lstrip(" :：") if message.startswith(name) else message


def bank_rows(coach: Coach, topic: str = "", level: str = "", query: str = "") -> list[list]:
    """Bank items filtered by topic and difficulty; a query matches text first, then meaning."""
    items = [i for i in coach.kb.bank.items.values()
             if (not topic or i.topic == topic) and (not level or str(i.difficulty) == str(level))]
    query = (query or "").strip().lower()
    if query:
        matched = [i for i in items if query in " ".join([i.id, *i.all_questions, *i.tags]).lower()]
        if not matched:
            allowed = {i.id: i for i in items}
            hits = coach.kb.search(check_query(query), k=10, kind="bank")
            matched = [allowed[h.item_id] for h in hits if h.item_id in allowed]
        items = matched
    return [[i.id, coach.topic_name(i.topic), difficulty_name(i.difficulty), i.question] for i in items]


def item_markdown(coach: Coach, item_id: str) -> str:
    item = coach.kb.bank.get(item_id)
    points = "\n".join(f"- {kp.point}" for kp in item.key_points)
    return t("kb.item_detail", question=item.question, id=item.id, topic=coach.topic_name(item.topic),
             difficulty=difficulty_name(item.difficulty), answer=item.answer.strip(), points=points)


def knowledge_tab(coach: Coach, header) -> None:
    gr.Markdown(t("kb.intro", mb=MAX_UPLOAD_MB))
    with gr.Row():
        with gr.Column(scale=3):
            # no file_types filter here: the browser's own rejection is in English; upload_problem() says it in Chinese
            files = gr.File(label=t("kb.upload"), file_count="multiple", height=150, elem_id="kb-files")
            replace = gr.Checkbox(False, label=t("kb.replace"), elem_id="kb-replace")
            add = gr.Button(t("kb.add"), variant="primary", elem_id="kb-add")
            result = gr.Markdown(elem_id="kb-result")
        with gr.Column(scale=2):
            table = gr.Dataframe(coach.source_rows(), headers=[t("kb.col_source"), t("kb.col_chunks")],
                                 interactive=False, label=t("kb.sources"), max_height=260, elem_id="kb-sources")
            with gr.Row():
                pick = gr.Dropdown(sorted(coach.kb.sources()), value=None, label=t("kb.remove_pick"), scale=3,
                                   elem_id="kb-remove-pick")
                remove = gr.Button(t("kb.remove"), variant="stop", scale=1, min_width=80, elem_id="kb-remove")
            rebuild = gr.Button(t("kb.rebuild"), size="sm", elem_id="kb-rebuild")
            gr.Markdown(t("kb.rebuild_info"))
    listing = [table, pick, header]

    def listed():
        names = sorted(coach.kb.sources())
        return coach.source_rows(), gr.Dropdown(choices=names, value=None), t("header", summary=coach.summary())

    def upload(paths, replace_same, progress=gr.Progress()):
        if not paths:
            gr.Warning(t("kb.no_files"), title=t("warning_title"))
            return gr.skip()
        try:
            report = coach.add_documents([Path(p) for p in paths], progress, replace=bool(replace_same))
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        return report_markdown(report), None, *listed()

    def drop(name):
        if not name:
            gr.Warning(t("kb.pick_source"), title=t("warning_title"))
            return gr.skip()
        try:
            removed = coach.remove_document(name)
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        return t("kb.removed", name=html.escape(name), chunks=removed), *listed()

    def rebuild_index(progress=gr.Progress()):
        try:
            counts = coach.rebuild(progress)
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        return t("kb.rebuilt", bank=counts["bank_units"], docs=counts["doc_units"]), *listed()

    add.click(upload, [files, replace], [result, files, *listing], api_visibility="private")
    remove.click(drop, pick, [result, *listing], api_visibility="private")
    rebuild.click(rebuild_index, None, [result, *listing], api_visibility="private")
    browse_bank(coach)


def browse_bank(coach: Coach) -> None:
    gr.Markdown("### " + t("kb.browse"))
    with gr.Row():
        topic = gr.Dropdown([(t("kb.all"), "")] + [(tp.zh, tp.id) for tp in coach.kb.bank.topics.values()],
                            value="", label=t("kb.browse_topic"), scale=1, elem_id="bank-topic")
        level = gr.Radio([(t("kb.all"), "")] + [(difficulty_name(d), str(d)) for d in (1, 2, 3)], value="",
                         label=t("kb.browse_difficulty"), scale=1, elem_id="bank-level")
        query = gr.Textbox(label=t("kb.browse_search"), placeholder=t("kb.browse_search_placeholder"), scale=2,
                           elem_id="bank-search")
    with gr.Row():
        rows = gr.Dataframe(bank_rows(coach), headers=[t("kb.col_id"), t("kb.col_topic"), t("kb.col_difficulty"),
                                                       t("kb.col_question")],
                            interactive=False, max_height=360, column_widths=["26%", "12%", "8%", "54%"],
                            scale=3, elem_id="bank-table")
        detail = gr.Markdown(t("kb.pick_item"), elem_id="bank-detail")

    def filtered(topic_id, difficulty, text):
        try:
            return bank_rows(coach, topic_id, difficulty, text)
        except CoachError as exc:
            warn(exc)
            return gr.skip()

    def show(evt: gr.SelectData):
        row = getattr(evt, "row_value", None) or []
        return item_markdown(coach, row[0]) if row and row[0] in coach.kb.bank.items else gr.skip()

    gr.on([topic.change, level.change, query.submit], filtered, [topic, level, query], rows,
          api_visibility="private", show_progress="hidden")
    rows.select(show, None, detail, api_visibility="private", show_progress="hidden")


# ---- 模拟面试 -------------------------------------------------------------------------------------------
def question_markdown(coach: Coach, question, view: dict) -> str:
    topic = coach.topic_name(question.topic)
    if question.is_follow_up:
        return t("interview.follow_up_header", topic=topic, question=question.text)
    return t("interview.question_header", n=view["main"], total=view["total"], topic=topic,
             difficulty=difficulty_name(question.difficulty), question=question.text)


def countdown_markdown(view: dict, now: float | None = None) -> str:
    deadline = view.get("deadline")
    if not deadline:
        return t("interview.countdown_off")
    left = int(deadline - (now or time.time()) + 0.999)
    if left <= 0:
        return t("interview.countdown_over")
    return t("interview.countdown", mm=f"{left // 60:02d}", ss=f"{left % 60:02d}")


def turn_markdown(result) -> str:
    grade = result.grade
    head = (t("grade.no_score_line", verdict=grade.verdict) if grade.score is None
            else t("grade.score_line", score=f"{grade.score:.1f}", verdict=grade.verdict))
    note = "\n\n" + t("interview.countdown_over") if result.timed_out else ""
    asked = t("interview.last_grade", question=" ".join(result.question.text.split()))
    return f"{asked}\n\n{head}{note}\n\n{grade_details_markdown(grade)}"


def topic_frame(coach: Coach, report):
    import pandas as pd

    scores = report.topic_scores()
    return pd.DataFrame({t("interview.chart_topic"): [coach.topic_name(k) for k in scores],
                         t("interview.chart_score"): [mean for mean, _ in scores.values()]})


def interview_tab(coach: Coach) -> dict:
    """The interview form and its handlers; returns what the progress tab needs to start a review."""
    def abandon(view: dict) -> None:
        """The browser tab went away mid-interview: record the session as stopped early."""
        if view and view.get("session") and not view.get("done"):
            try:
                coach.stop_interview(view["session"])
            except CoachError:
                pass

    gr.Markdown(t("interview.intro"))
    state = gr.State({"session": None}, delete_callback=abandon)
    timer = gr.Timer(1.0, active=False)
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            topics = gr.Dropdown(coach.topic_choices(), value=[],
                                 multiselect=True, label=t("interview.topics"), elem_id="iv-topics")
            level = gr.Radio([tuple(c) for c in t("interview.difficulty_choices")], value="adaptive",
                             label=t("interview.difficulty"), elem_id="iv-level")
            count = gr.Slider(1, 10, value=3, step=1, label=t("interview.questions"), elem_id="iv-count")
            limit = gr.Dropdown([tuple(c) for c in t("interview.timer_choices")], value=0,
                                label=t("interview.timer"), elem_id="iv-limit")
            start = gr.Button(t("interview.start"), variant="primary", elem_id="iv-start")
            stop = gr.Button(t("interview.stop"), variant="stop", size="sm", elem_id="iv-stop")
        with gr.Column(scale=2):
            banner = gr.Markdown(elem_id="iv-banner")
            question = gr.Markdown(t("interview.not_started"), elem_id="iv-question")
            countdown = gr.Markdown(elem_id="iv-countdown")
            answer = gr.Textbox(label=t("interview.answer"), placeholder=t("interview.answer_placeholder"), lines=6,
                                elem_id="iv-answer")
            with gr.Row():
                submit = gr.Button(t("interview.submit"), variant="primary", elem_id="iv-submit")
                skip = gr.Button(t("interview.skip"), elem_id="iv-skip")
            graded = gr.Markdown(elem_id="iv-grade")
    with gr.Column(visible=False, elem_id="iv-report-box") as report_box:
        with gr.Row():
            report = gr.Markdown(elem_id="iv-report")
            with gr.Column():
                plot = gr.BarPlot(x=t("interview.chart_topic"), y=t("interview.chart_score"), y_lim=[0, 10],
                                  label=t("interview.chart"), height=280, elem_id="iv-chart")
                download = gr.DownloadButton(t("interview.download"), visible=False, elem_id="iv-download")
    outputs = [state, banner, question, countdown, timer, answer, graded, report_box, report, plot, download]

    def finished(view: dict, last: str):
        result = coach.interview_report(view["session"])
        path = coach.save_report(result)
        return ({**view, "deadline": None, "done": True}, "", t("interview.finished"), "", gr.Timer(active=False),
                "", last, gr.Column(visible=True), result.to_markdown(), topic_frame(coach, result),
                gr.DownloadButton(value=str(path), visible=True))

    def begin(topic_ids, difficulty, questions, seconds, review: bool = False):
        try:
            session_id, first = coach.start_interview(
                interview_config(topic_ids, difficulty, questions, seconds, review))
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        view = {"session": session_id, "main": 1, "total": int(questions),
                "deadline": first.deadline.timestamp() if first.deadline else None}
        banner_text = t("interview.review_banner", n=int(questions)) if review else ""
        return (view, banner_text, question_markdown(coach, first, view), countdown_markdown(view),
                gr.Timer(active=bool(first.time_limit)), "", "", gr.Column(visible=False), "", None,
                gr.DownloadButton(visible=False))

    def reply(text: str, view: dict):
        if not view.get("session") or view.get("done"):
            gr.Warning(t("interview.not_started"), title=t("warning_title"))
            return gr.skip()
        try:
            result = coach.answer_interview(view["session"], text)
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        if result.finished:
            return finished(view, turn_markdown(result))
        nxt = result.next
        view = {**view, "main": view["main"] + (not nxt.is_follow_up),
                "deadline": nxt.deadline.timestamp() if nxt.deadline else None}
        return (view, gr.skip(), question_markdown(coach, nxt, view), countdown_markdown(view),
                gr.Timer(active=bool(nxt.time_limit)), "", turn_markdown(result), *[gr.skip()] * 4)

    def end(view: dict):
        if not view.get("session") or view.get("done"):
            return gr.skip()
        try:
            coach.stop_interview(view["session"])
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        return finished(view, gr.skip())

    def tick(view: dict):
        text = countdown_markdown(view)
        return text, gr.Timer(active=text != t("interview.countdown_over") and bool(view.get("deadline")))

    private = dict(api_visibility="private")
    start.click(begin, [topics, level, count, limit], outputs, **private)
    gr.on([submit.click, answer.submit], reply, [answer, state], outputs, **private)
    skip.click(lambda view: reply("", view), state, outputs, **private)
    stop.click(end, state, outputs, **private)
    timer.tick(tick, state, [countdown, timer], show_progress="hidden", concurrency_limit=None, **private)
    return {"outputs": outputs, "begin": begin, "topics": topics}


# ---- 进度 ----------------------------------------------------------------------------------------------
def local_time(moment) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def progress_tables(coach: Coach) -> dict:
    import pandas as pd

    data = coach.progress()
    score = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    statuses = t("progress.status")
    timeline = pd.DataFrame(
        [(pd.Timestamp(when.astimezone().replace(tzinfo=None)), coach.topic_name(topic), round(mean, 1))
         for when, topic, mean in data["timeline"]],
        columns=[t("progress.chart_time"), t("progress.chart_topic"), t("progress.chart_score")])
    return {
        "timeline": timeline,
        "topics": [[coach.topic_name(p.topic), p.answers, score(p.mean_score), score(p.recent_score), p.due]
                   for p in data["topics"]],
        "due": [[d.item.question, coach.topic_name(d.item.topic), local_time(d.due)] for d in data["due"]],
        "sessions": [[local_time(s.started_at), statuses.get(s.status, s.status), s.questions, score(s.mean_score),
                      "、".join(coach.topic_name(x) for x in s.topics)] for s in data["sessions"]],
    }


def progress_tab(coach: Coach, app, tab, tabs, interview: dict) -> None:
    with gr.Row():
        gr.Markdown(t("progress.intro"))
        refresh = gr.Button(t("progress.refresh"), size="sm", scale=0, min_width=90, elem_id="progress-refresh")
    empty = gr.Markdown(visible=False, elem_id="progress-empty")
    with gr.Row():
        chart = gr.LinePlot(x=t("progress.chart_time"), y=t("progress.chart_score"), color=t("progress.chart_topic"),
                            y_lim=[0, 10], x_axis_format="%m-%d", label=t("progress.chart"), scale=3,
                            elem_id="progress-chart")
        topics = gr.Dataframe(headers=[t("progress.col_topic"), t("progress.col_answers"), t("progress.col_mean"),
                                       t("progress.col_recent"), t("progress.col_due")],
                              interactive=False, label=t("progress.topics"), scale=2, elem_id="progress-topics")
    with gr.Row():
        with gr.Column(scale=3):
            due = gr.Dataframe(headers=[t("progress.col_item"), t("progress.col_topic"), t("progress.col_due_at")],
                               interactive=False, label=t("progress.due"), max_height=260, elem_id="progress-due")
        review = gr.Button(t("progress.review_none"), variant="primary", scale=1, interactive=False,
                           elem_id="progress-review")
    sessions = gr.Dataframe(headers=[t("progress.col_started"), t("progress.col_status"),
                                     t("progress.col_questions"), t("progress.col_mean"), t("progress.col_topics")],
                            interactive=False, label=t("progress.sessions"), max_height=300,
                            elem_id="progress-sessions")

    def load():
        try:
            data = progress_tables(coach)
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        n = len(data["due"])
        button = gr.Button(t("progress.review", n=n) if n else t("progress.review_none"), interactive=bool(n))
        note = gr.Markdown(t("progress.no_history"), visible=not data["sessions"])
        return note, data["timeline"], data["topics"], data["due"], button, data["sessions"]

    def start_review():
        due_now = len(coach.progress()["due"])
        if not due_now:
            gr.Warning(t("progress.no_due"), title=t("warning_title"))
            return gr.skip()
        from .interview import MAX_QUESTIONS

        started = interview["begin"]([], "adaptive", min(due_now, MAX_QUESTIONS), 0, review=True)
        return started if isinstance(started, dict) else (*started, gr.Tabs(selected="interview"))

    gr.on([refresh.click, tab.select, app.load], load, None, [empty, chart, topics, due, review, sessions],
          api_visibility="private", show_progress="hidden")
    review.click(start_review, None, [*interview["outputs"], tabs], api_visibility="private")


# ---- serving ---------------------------------------------------------------------------------------------
def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``"user:pass"`` -> ``("user", "pass")``; empty -> None (no password)."""
    value = (value or "").strip()
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise InputError("The password setting must look like user:password (from --auth or COACH_AUTH).")
    return user, password


def serve(host: str = "127.0.0.1", port: int = 7860, auth: str | None = None, share: bool = False,
          settings: Settings | None = None, prevent_thread_lock: bool = False, quiet: bool = False, coach=None):
    """Load the models once, build the page and launch it; returns ``(app, local_url)``."""
    credentials = parse_auth(auth if auth is not None else os.environ.get("COACH_AUTH"))
    from starlette.middleware import Middleware

    coach = coach or Coach(settings)
    app = build_app(coach)
    app.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX)
    coach.reports_dir.mkdir(parents=True, exist_ok=True)
    _, url, _ = app.launch(
        server_name=host, server_port=port, auth=credentials, auth_message=t("title") if credentials else None,
        share=share, max_file_size=f"{MAX_UPLOAD_MB}mb", prevent_thread_lock=prevent_thread_lock, quiet=quiet,
        show_error=False, allowed_paths=[str(coach.reports_dir)], footer_links=["api"], ssr_mode=False,
        mcp_server=False, css=CSS + toast_css(), enable_monitoring=False,
        app_kwargs={"middleware": [Middleware(LoginThrottle)]})
    return app, url
