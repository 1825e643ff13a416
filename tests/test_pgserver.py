"""The throwaway PostgreSQL server the database tests run against (tests/pgserver.py): a real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests import pgserver
from tests.pgserver import ThrowawayPostgres, check_name, find_bindir

REPO = Path(__file__).resolve().parent.parent


def refuses(host: str, port: int) -> bool:
    """True when nothing accepts a TCP connection at host:port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        try:
            s.connect((host, port))
        except OSError:
            return True
    return False


def non_loopback_ipv4() -> str | None:
    """One of this machine's own IPv4 addresses that is not loopback, if it has one."""
    found = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.123", 9))  # no packet is sent: only picks the outgoing interface
            found.add(s.getsockname()[0])
        except OSError:
            pass
    try:
        found.update(info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET))
    except OSError:
        pass
    own = sorted(a for a in found if not a.startswith("127.") and a != "0.0.0.0")
    return own[0] if own else None


def table_names(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {name for (name,) in rows}


def test_server_is_postgresql_15_or_newer(postgres):
    assert postgres.url == f"postgresql://postgres@127.0.0.1:{postgres.port}/coach"
    assert postgres.admin_url == f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres"
    with psycopg.connect(postgres.url) as conn:
        version = conn.execute("SELECT version()").fetchone()[0]
        number = int(conn.execute("SHOW server_version_num").fetchone()[0])
        database = conn.execute("SELECT current_database()").fetchone()[0]
        encoding = conn.execute("SHOW server_encoding").fetchone()[0]
    assert version.startswith("PostgreSQL "), version
    assert number >= 150000, version
    assert database == "coach"
    assert encoding == "UTF8"
    assert table_names(postgres.url) == set()


def test_listens_on_loopback(postgres):
    assert not refuses("127.0.0.1", postgres.port)
    with psycopg.connect(postgres.admin_url) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        assert conn.execute("SHOW fsync").fetchone()[0] == "off"
    assert refuses("::1", postgres.port)  # not even IPv6 loopback


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a socket listening on ``port``, from the kernel's own tables."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = open(table, encoding="ascii").read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]) if width == 8 else address)
    return found


def test_refuses_connections_on_other_addresses(postgres):
    # the kernel says what the server listens on: 127.0.0.1 only (no 0.0.0.0, no IPv6)
    assert listening_addresses(postgres.port) == {"127.0.0.1"}
    address = non_loopback_ipv4()
    if address is not None:  # and where the machine has another address, a client there is refused
        assert refuses(address, postgres.port), f"the server answered on {address}:{postgres.port}"
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(f"postgresql://postgres@{address}:{postgres.port}/coach", connect_timeout=3)


def test_new_databases_are_isolated(postgres):
    first = postgres.new_database("iso_first")
    second = postgres.new_database("iso_second")
    assert first.endswith("/iso_first") and second.endswith("/iso_second")
    with psycopg.connect(first) as conn:
        conn.execute("CREATE TABLE notes (body text)")
        conn.execute("INSERT INTO notes VALUES ('only in the first')")
    assert table_names(first) == {"notes"}
    assert table_names(second) == set()
    with psycopg.connect(second) as conn, pytest.raises(psycopg.errors.UndefinedTable):
        conn.execute("SELECT * FROM notes")
    assert table_names(postgres.url) == set()


def test_each_test_gets_a_fresh_database(postgres, postgres_url):
    assert postgres_url.startswith(f"postgresql://postgres@127.0.0.1:{postgres.port}/t")
    assert postgres_url != postgres.url
    assert table_names(postgres_url) == set()
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE scratch (x int)")  # the next test's database must not see it


def test_the_next_test_does_not_see_it(postgres_url):
    assert table_names(postgres_url) == set()


@pytest.mark.parametrize("name", ["", "Coach", "1abc", "a-b", "a;drop database coach", "a b", "名字",
                                  "a" * 42, "coach\n", None])
def test_bad_database_names_raise_value_error(postgres, name):
    with pytest.raises(ValueError):
        postgres.new_database(name)


def test_longest_plain_name_is_accepted(postgres):
    name = "_" + "a" * 40
    assert check_name(name) == name
    assert postgres.new_database(name).endswith("/" + name)


def test_exit_stops_the_server_and_removes_its_folder():
    with ThrowawayPostgres() as pg:
        port, folder = pg.port, pg.folder
        assert folder.name.startswith("coach-pg-") and (folder / "data" / "PG_VERSION").is_file()
        with psycopg.connect(pg.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert pg.startup_seconds < 30
    assert refuses("127.0.0.1", port)
    assert not folder.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/coach", connect_timeout=3)
    pg.stop()  # a second stop is harmless


def test_a_failed_start_reports_the_server_log_and_cleans_up(monkeypatch):
    made = []
    real_mkdtemp = pgserver.tempfile.mkdtemp
    monkeypatch.setattr(pgserver.tempfile, "mkdtemp", lambda **kw: made.append(real_mkdtemp(**kw)) or made[-1])
    pg = ThrowawayPostgres(settings={"no_such_setting": "1"})
    with pytest.raises(RuntimeError, match='unrecognized configuration parameter "no_such_setting"'):
        pg.start()
    assert pg.folder is None
    assert len(made) == 1 and not os.path.exists(made[0])


def test_a_taken_port_is_retried_once(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = iter([busy])
        real_free_port = pgserver.free_port
        monkeypatch.setattr(pgserver, "free_port", lambda: next(ports, None) or real_free_port())
        with ThrowawayPostgres() as pg:
            assert pg.port != busy
            with psycopg.connect(pg.url) as conn:
                assert conn.execute("SELECT current_database()").fetchone() == ("coach",)
            assert "already in use" in pg.log_path.read_text(errors="replace")


def test_server_is_stopped_when_its_owner_is_killed():
    script = ("import sys, time\n"
              f"sys.path.insert(0, {str(REPO)!r})\n"
              "from tests.pgserver import ThrowawayPostgres\n"
              "pg = ThrowawayPostgres().start()\n"
              "print(pg.port, pg.folder, flush=True)\n"
              "time.sleep(120)\n")
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        port, folder = owner.stdout.readline().split()
        port, folder = int(port), Path(folder)
        assert not refuses("127.0.0.1", port) and folder.is_dir()
    finally:
        owner.send_signal(signal.SIGKILL)  # no __exit__, no atexit: only the watchdog is left
        owner.wait(timeout=10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not refuses("127.0.0.1", port) or folder.exists()):
        time.sleep(0.1)
    assert refuses("127.0.0.1", port), "the server outlived its owner"
    assert not folder.exists(), "the server's folder outlived its owner"


def test_missing_server_programs_are_named_in_one_sentence(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(pgserver, "DEBIAN_BINDIRS", str(tmp_path / "nowhere" / "*" / "bin"))
    with pytest.raises(RuntimeError, match=r"apt-get install postgresql-15") as caught:
        find_bindir()
    assert str(caught.value).startswith("PostgreSQL server programs (initdb) were not found")
    with pytest.raises(RuntimeError, match="initdb"):
        ThrowawayPostgres().start()


def test_finds_the_installed_server_programs():
    bindir = find_bindir()
    for program in ("initdb", "pg_ctl", "postgres"):
        assert (bindir / program).is_file()
