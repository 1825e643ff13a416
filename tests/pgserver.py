"""A throwaway PostgreSQL server for tests and scripts: initdb in a temp folder, a free loopback port.

    from tests.pgserver import ThrowawayPostgres

    with ThrowawayPostgres() as pg:
        pg.url                      # postgresql://postgres@127.0.0.1:PORT/coach
        pg.new_database("t_abc")    # another empty database, its URL

The server is real (Debian's ``postgresql-15``, found by :func:`find_bindir`),
trusts local connections, listens on 127.0.0.1 only and trades durability for
speed (``fsync=off``). Run as root, the server programs run as the ``postgres``
user, since initdb refuses root. It is stopped and its folder removed on
``__exit__``, at interpreter exit (``atexit``), and - by a small watchdog
process that waits on a pipe from this one - when this process dies without
either (SIGKILL, SIGTERM).

Only the standard library and psycopg are used, so scripts can import this
module after putting the repository root on ``sys.path``.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER_USER = "postgres"
DEBIAN_BINDIRS = "/usr/lib/postgresql/*/bin"
DATABASE = "coach"
# Loopback only, and speed over durability: the data is thrown away anyway.
DEFAULT_SETTINGS = {"listen_addresses": "127.0.0.1", "fsync": "off", "synchronous_commit": "off",
                    "full_page_writes": "off", "max_connections": 200}
START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,40}")
_NOT_FOUND = ("PostgreSQL server programs (initdb) were not found; install Debian's postgresql-15 "
              "(`apt-get install postgresql-15`) or put a PostgreSQL bin folder with initdb on PATH.")


def find_bindir() -> Path:
    """The folder holding initdb, pg_ctl and postgres: ``pg_config --bindir`` when it has initdb,
    else the newest ``/usr/lib/postgresql/*/bin`` with initdb, else initdb's folder on PATH."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=30)
            bindir = Path(out.stdout.strip())
            if out.returncode == 0 and out.stdout.strip() and (bindir / "initdb").is_file():
                return bindir
        except (OSError, subprocess.SubprocessError):
            pass
    candidates = [Path(p) for p in glob.glob(DEBIAN_BINDIRS) if (Path(p) / "initdb").is_file()]
    if candidates:
        return max(candidates, key=lambda p: _version_key(p.parent.name))
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError(_NOT_FOUND)


def _version_key(name: str) -> tuple:
    return tuple(int(part) if part.isdigit() else -1 for part in re.split(r"[.]", name))


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_name(name: str) -> str:
    """``name`` when it is a plain database name (``[a-z_][a-z0-9_]{0,40}``), else ValueError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"not a plain database name (want [a-z_][a-z0-9_]{{0,40}}): {name!r}")
    return name


# The watchdog: blocks reading its stdin (a pipe whose only writer is the owning
# process); at EOF - the owner closed it or died - it stops the postmaster named in
# postmaster.pid (SIGQUIT = immediate shutdown, SIGKILL if it lingers) and removes
# the folder. After a normal stop both are already gone and it just exits.
_WATCHDOG = r"""
import os, shutil, signal, sys, time
folder = sys.argv[1]
data = os.path.join(folder, "data")
try:
    sys.stdin.buffer.read()
except BaseException:
    pass
def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False
def ours(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return data.encode() in f.read()
    except OSError:
        return False
try:
    with open(os.path.join(data, "postmaster.pid")) as f:
        pid = int(f.readline())
except (OSError, ValueError):
    pid = 0
if pid > 0 and ours(pid):
    for sig, wait in ((signal.SIGQUIT, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except OSError:
            break
        deadline = time.monotonic() + wait
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not alive(pid):
            break
if os.path.basename(folder).startswith("coach-pg-"):
    shutil.rmtree(folder, ignore_errors=True)
"""


class ThrowawayPostgres:
    """A PostgreSQL server in a temp folder on a free 127.0.0.1 port, with an empty ``coach`` database.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`). After start:
    ``url`` (the ``coach`` database), ``admin_url`` (the ``postgres`` database), ``port``,
    ``folder``, ``log_path``; :meth:`new_database` adds more empty databases.
    """

    def __init__(self, bindir: Path | str | None = None, settings: dict[str, object] | None = None):
        """``bindir``: the server programs' folder (default :func:`find_bindir`); ``settings``: extra
        server settings, passed as ``-c name=value`` (they win over the defaults)."""
        self._bindir = Path(bindir) if bindir else None
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        for key in self.settings:
            if not re.fullmatch(r"[a-z_][a-z0-9_.]*", key):
                raise ValueError(f"not a PostgreSQL setting name: {key!r}")
        self.folder: Path | None = None
        self.port: int | None = None
        self.url: str | None = None
        self.admin_url: str | None = None
        self.startup_seconds: float | None = None
        self._watchdog: subprocess.Popen | None = None
        self._running = False
        self._owner_pid = os.getpid()

    # -- paths -------------------------------------------------------------

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_bindir()
        return self._bindir

    @property
    def data_dir(self) -> Path:
        return self._require_folder() / "data"

    @property
    def socket_dir(self) -> Path:
        return self._require_folder() / "sock"

    @property
    def log_path(self) -> Path:
        return self._require_folder() / "server.log"

    def url_for(self, name: str) -> str:
        """The URL of database ``name`` on this server."""
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{check_name(name)}"

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> "ThrowawayPostgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "ThrowawayPostgres":
        """initdb, start the server, create the ``coach`` database; RuntimeError (with the log) on failure."""
        if self.folder is not None:
            raise RuntimeError("this ThrowawayPostgres was already started")
        began = time.monotonic()
        bindir = self.bindir
        owner = self._server_account()
        self.folder = Path(tempfile.mkdtemp(prefix="coach-pg-", dir=self._temp_root()))
        self._owner_pid = os.getpid()
        atexit.register(self._stop_at_exit)
        try:
            self.socket_dir.mkdir()
            if owner:
                for path in (self.folder, self.socket_dir):
                    os.chown(path, owner.pw_uid, owner.pw_gid)
            self._start_watchdog()
            self._initdb(bindir)
            self._start_server(bindir)
            self._running = True
            self.admin_url = self.url_for("postgres")
            self.url = self.new_database(DATABASE)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Stop the server (immediate shutdown) and remove its folder; safe to call twice."""
        atexit.unregister(self._stop_at_exit)
        folder, self.folder = self.folder, None
        if folder is None:
            return
        try:
            if self._running or (folder / "data" / "postmaster.pid").exists():
                self._run_server_cmd([str(self.bindir / "pg_ctl"), "-D", str(folder / "data"),
                                      "-w", "-t", "30", "stop", "-m", "immediate"],
                                     cwd=folder, timeout=60, check=False)
        finally:
            self._running = False
            shutil.rmtree(folder, ignore_errors=True)
            if self._watchdog is not None:
                watchdog, self._watchdog = self._watchdog, None
                try:
                    watchdog.stdin.close()
                    watchdog.wait(timeout=15)
                except (OSError, subprocess.SubprocessError):
                    pass

    def _stop_at_exit(self) -> None:
        if os.getpid() == self._owner_pid:  # not in a forked child that happens to run atexit hooks
            self.stop()

    def new_database(self, name: str) -> str:
        """Create an empty database ``name`` (``[a-z_][a-z0-9_]{0,40}``) and return its URL."""
        check_name(name)
        if not self._running:
            raise RuntimeError("the throwaway PostgreSQL server is not running")
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url_for("postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    # -- internals ---------------------------------------------------------

    def _require_folder(self) -> Path:
        if self.folder is None:
            raise RuntimeError("the throwaway PostgreSQL server is not started")
        return self.folder

    @staticmethod
    def _server_account() -> pwd.struct_passwd | None:
        """The account the server programs run as when we are root (initdb refuses root), else None."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise RuntimeError(f"running as root, PostgreSQL has to run as the '{SERVER_USER}' user, which does "
                               "not exist; install Debian's postgresql-15 (`apt-get install postgresql-15`).") from None

    @staticmethod
    def _temp_root() -> str | None:
        """The temp root, or /tmp when the server user (root case) could not reach into it."""
        if os.geteuid() != 0:
            return None
        path = Path(tempfile.gettempdir()).resolve()
        for part in (path, *path.parents):
            if not os.stat(part).st_mode & 0o001:
                return "/tmp"
        return None

    def _start_watchdog(self) -> None:
        self._watchdog = subprocess.Popen(
            [sys.executable, "-I", "-c", _WATCHDOG, str(self.folder)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, cwd="/")

    def _run_server_cmd(self, cmd: list[str], *, cwd: Path, timeout: float, check: bool = True):
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", SERVER_USER, "--", *cmd]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        try:
            out = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, errors="replace", timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"`{' '.join(cmd)}` did not finish in {timeout:.0f} s") from exc
        if check and out.returncode != 0:
            raise subprocess.CalledProcessError(out.returncode, cmd, out.stdout)
        return out

    def _initdb(self, bindir: Path) -> None:
        base = [str(bindir / "initdb"), "-D", str(self.data_dir), "-A", "trust", "-U", SERVER_USER,
                "-E", "UTF8", "--no-sync", "--no-instructions"]
        output = ""
        for locale in ("--locale=C.UTF-8", "--no-locale"):
            shutil.rmtree(self.data_dir, ignore_errors=True)
            try:
                self._run_server_cmd([*base, locale], cwd=self.folder, timeout=120)
                return
            except subprocess.CalledProcessError as exc:
                output = exc.output or ""
        raise RuntimeError("initdb failed for the throwaway PostgreSQL server:\n" + _tail(output))

    def _start_server(self, bindir: Path) -> None:
        for attempt in (1, 2):
            self.port = free_port()
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            options = " ".join([f"-p {self.port}", f"-k {shlex.quote(str(self.socket_dir))}",
                                *(f"-c {shlex.quote(f'{k}={v}')}" for k, v in self.settings.items())])
            try:
                self._run_server_cmd([str(bindir / "pg_ctl"), "-D", str(self.data_dir), "-w",
                                      "-t", str(START_TIMEOUT), "-l", str(self.log_path), "start", "-o", options],
                                     cwd=self.folder, timeout=START_TIMEOUT + 30)
                return
            except (subprocess.CalledProcessError, RuntimeError) as exc:
                log = self._read_log(log_start)
                clash = "already in use" in log or "could not bind" in log
                if attempt == 1 and clash:
                    self._run_server_cmd([str(bindir / "pg_ctl"), "-D", str(self.data_dir), "stop",
                                          "-m", "immediate"], cwd=self.folder, timeout=60, check=False)
                    continue
                said = (getattr(exc, "output", None) or str(exc)).strip().splitlines()
                said = [line for line in said if line.startswith("pg_ctl:")] or said[-1:] or ["pg_ctl failed"]
                raise RuntimeError(f"the throwaway PostgreSQL server did not start on 127.0.0.1:{self.port} "
                                   f"({'; '.join(said)}); last lines of its log:\n{_tail(log)}") from None

    def _read_log(self, offset: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def _tail(text: str, lines: int = 20) -> str:
    kept = text.rstrip().splitlines()[-lines:]
    return "\n".join(kept) if kept else "(empty)"


if __name__ == "__main__":  # a quick manual check: python -m tests.pgserver
    with ThrowawayPostgres() as pg:
        print(f"started in {pg.startup_seconds:.2f} s: {pg.url}")
