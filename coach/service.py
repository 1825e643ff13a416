"""The application service behind the browser app and its API: one ``Coach`` per process.

``Coach`` holds what is expensive and shared (the knowledge base, the grader, the chat engine,
the upload worker) and the operations both shells need: documents, interviews, reports and
progress. It imports no Gradio, so the page (``coach/webapp/``) is one shell over it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any


from .config import Settings
from .errors import CoachError, InputError
from .limits import MAX_UPLOAD_MB, check_answer
from .strings import message_for, t


UPLOAD_SUFFIXES = (".txt", ".md", ".html", ".pdf", ".docx")



API_SESSIONS_PER_CLIENT = 32  # open API interviews per client (users behind one address share it); its own least recently used one is stopped first



INTERVIEW_IDLE = timedelta(hours=6)  # an interview untouched this long is closed in the history
MAX_OPEN_SPACES = 256  # users whose knowledge view and grader stay in memory at once



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



class Space:
    """One person's side of the coach: their knowledge view (the shared bank and documents plus
    their own uploads), history, reports and review schedule. Without accounts there is one
    space, the ``Coach`` itself, with everything in ``COACH_HOME`` as before."""

    def __init__(self, coach: "Coach", settings: Settings, kb, grader, chat, reports_dir: Path,
                 user: str | None = None):
        self.coach, self.user, self.settings, self.kb = coach, user, settings, kb
        self.grader, self.chat = grader, chat
        self.interviews = ApiInterviews(settings)
        self.documents_dir = settings.home / "documents"
        self.reports_dir = reports_dir  # the CLI writes to reports/, never served
        self._report_dirs: dict[str, Path] = {}  # session id -> its (random) report folder
        self.write_lock = threading.Lock()

    @property
    def llm(self):
        return self.coach.llm_model

    # ---- reading ------------------------------------------------------------------
    def summary(self) -> str:
        mode = t("mode_llm", model=self.llm.id) if self.llm else t("mode_offline")
        # who is signed in, and a way out when the app's own login page let them in
        key = "signed_in_proxy" if self.coach.trusted_header else "signed_in"
        who = t(key, user=_markdown_safe(self.user)) if self.user else ""
        return t("summary", items=len(self.kb.bank.items), topics=len(self.kb.bank.topics),
                 docs=len(self.kb.all_sources()), mode=mode) + who

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
            result = self.coach.ingest_worker.run(accepted, replace, progress, user=self.user)
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

    def record_practice(self, grade, answer: str) -> bool:
        """An answer graded in 答案评分 counts as practice: progress and the review schedule see it.
        Only a real grade against a known question is kept (not an empty answer, not an unmatched question)."""
        from .history import GradedAnswer, History, NewTurn, utcnow
        from .interview import new_session_id

        if grade.score is None or not grade.item_id:
            return False
        try:
            item = self.kb.catalog.get(grade.item_id)
        except CoachError:
            return False
        now = utcnow()
        turn = NewTurn("question", item.id, item.topic, item.difficulty, item.question)
        graded = GradedAnswer(answer.strip(), float(grade.score), grade.verdict, grade.to_json(), 0.0, False,
                              review=True)
        with History.open(self.settings) as history:
            history.record_practice(new_session_id(now), turn, graded, now)
        return True

    def session_report(self, session_id: str):
        """The report of any past session (interview or practice) by its id."""
        from .history import History
        from .interview import InterviewReport

        names = {t.id: t.zh for t in self.kb.catalog.topics.values()}
        with History.open(self.settings) as history:
            return InterviewReport.build(history, session_id, names)

    def save_report(self, report) -> tuple[Path, Path]:
        """The report as Markdown and PDF, named for the candidate (``面试报告-2026-12-02-1430-normalization``),
        each in a folder whose name is random: the files are served to this browser tab, and another user
        cannot guess where they are. Nothing in either name comes from what a user typed."""
        # one folder per session in this process: opening the same report again rewrites it, not a copy
        folder = self._report_dirs.setdefault(report.session_id, self.reports_dir / secrets.token_urlsafe(12))
        return report.save(folder), report.save(folder, ".pdf")

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
                timeline += [(summary.id, topic, sum(s) / len(s)) for topic, s in by_topic.items()]
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
        return _ProgressBridge(self.kb, progress, self.coach.startup_progress)



class Coach(Space):
    """What every browser session and API client shares: one knowledge base, grader and chat engine,
    and the upload worker; ``space(user)`` is a signed-in user's own side of it."""

    def __init__(self, settings: Settings | None = None, log=None, accounts=None, trusted_header: str | None = None):
        from .chat import ChatEngine
        from .grade import Grader
        from .knowledge import KnowledgeBase
        from .llm import make_llm

        log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        started = time.monotonic()
        log("coach: loading the question bank, the embedding model and the index (the first start embeds the bank)...")
        self.startup_progress = TerminalProgress()
        kb = KnowledgeBase(settings or Settings.from_env(), progress=self.startup_progress)
        kb.data  # noqa: B018 - builds or loads the index now, not on the first request
        kb.retriever  # noqa: B018
        kb.refresh_in_background = True  # a new generation is loaded beside the requests, not in one
        self.llm_model = make_llm(kb.settings)
        self.accounts = accounts  # accounts.Users, or None: one person, no login
        self.trusted_header = (trusted_header or "").strip() or None  # a reverse proxy names the user
        self.ingest_worker = IngestWorker(kb.settings)
        self._spaces: dict[str, Space] = {}
        self._spaces_lock = threading.Lock()
        super().__init__(self, kb.settings, kb, Grader(kb, llm=self.llm_model), ChatEngine(kb, self.llm_model),
                         kb.settings.home / "web-reports")
        self.kb.search("BN", k=1)  # warm the query path (never the LLM) so the first user does not wait
        log(f"coach: ready in {time.monotonic() - started:.1f}s: {len(self.kb.bank.items)} questions, "
            f"{len(self.kb.sources())} documents")

    @property
    def per_user(self) -> bool:
        """Does each person have their own space? With users in the users file, or a trusted header."""
        return bool(self.trusted_header) or (self.accounts is not None and len(self.accounts) > 0)

    def space_for(self, username: str | None, headers=None) -> Space:
        """The space of whoever sent a request: the name the login gave, or the proxy's trusted header.
        Without accounts (one person, or one shared password) it is the app's one space."""
        if not self.per_user:
            return self
        if self.trusted_header:
            from .accounts import check_name

            name = (headers.get(self.trusted_header) if headers is not None else None) or ""
            try:
                return self.space(check_name(name))
            except InputError:
                raise InputError(f"This server takes the user name from the proxy's {self.trusted_header} header, "
                                 "and this request has no valid one; open the app through the proxy.") from None
        if not username:
            raise InputError("Sign in first: this server has accounts.")
        return self.space(username)

    def space(self, user: str | None) -> Space:
        """The space of a signed-in ``user`` (their own history, documents and reports, in
        ``COACH_HOME/users/<key>/``); ``None`` is the one space of an app without accounts."""
        if not user:
            return self
        from .accounts import user_key

        key = user_key(user)
        with self._spaces_lock:
            found = self._spaces.get(key)
            if found is None:
                found = self._spaces[key] = self._new_space(user, key)
                if len(self._spaces) > MAX_OPEN_SPACES:  # the least recently opened goes; it reopens from disk
                    self._spaces.pop(next(iter(self._spaces)))
            return found

    def _new_space(self, user: str, key: str) -> Space:
        from dataclasses import replace

        from .chat import ChatEngine
        from .grade import Grader
        from .knowledge import user_knowledge

        home = self.settings.home / "users" / key
        settings = replace(self.settings, home=home, index_dir=home / "index", user=key)
        kb = user_knowledge(settings, self.startup_progress, self.kb)
        kb.refresh_in_background = True
        grader = Grader(kb, llm=self.llm_model)
        grader._vectors, grader._concepts = self.grader._vectors, self.grader._concepts  # reference texts are shared
        return Space(self, settings, kb, grader, ChatEngine(kb, self.llm_model), self.reports_dir / key, user)



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



def _markdown_safe(text: str) -> str:
    """A user name shown in Markdown: no markup, no HTML (names are checked, this is belt and braces)."""
    import html
    import re

    return re.sub(r"([\\`*_{}\[\]()#+!|<>~-])", r"\\\1", html.escape(str(text)))



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
               "COACH_RERANKER": self.settings.reranker, "COACH_DATABASE_URL": self.settings.database_url}
        self.child = subprocess.Popen([sys.executable, "-m", "coach", "ingest-worker"], env=env, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, encoding="utf-8",
                                      errors="replace", bufsize=1)

    def run(self, paths: list[Path], replace: bool, progress=None, user: str | None = None):
        """Ingest ``paths`` into the shared index, or into ``user``'s own documents (by their key)."""
        from .errors import IngestError
        from .knowledge import IngestReport

        stages = t("kb.stages")
        with self.lock:
            if self.child is None or self.child.poll() is not None:
                self._start()
            try:
                job = {"paths": [str(p) for p in paths], "replace": replace}
                if user:
                    from .accounts import user_key

                    job["user"] = user_key(user)
                self.child.stdin.write(json.dumps(job) + "\n")
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

