"""User accounts: the users file, its hashes and locking, and `coach users`; real files, real subprocesses."""

import hashlib
import json
import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from coach import accounts
from coach.accounts import Users, user_key, users_path
from coach.cli import cli
from coach.config import Settings
from coach.errors import CoachError, InputError

PASSWORD = "correct horse"


@pytest.fixture
def path(tmp_path) -> Path:
    return users_path(Settings.from_env())


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)
    return invoke


def coach(*args, input=None, env=None):
    """`coach ...` as its own process (COACH_HOME comes from the test's environment)."""
    return subprocess.run([sys.executable, "-m", "coach", *args], input=input, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_the_file_is_in_coach_home_unless_coach_users_file_says_otherwise(tmp_path, monkeypatch):
    assert users_path(Settings.from_env()) == tmp_path / "home" / "users.json"
    monkeypatch.setenv("COACH_USERS_FILE", str(tmp_path / "elsewhere" / "accounts.json"))
    assert users_path(Settings.from_env()) == tmp_path / "elsewhere" / "accounts.json"


def test_a_missing_file_means_no_users(path):
    users = Users.load(path)
    assert len(users) == 0 and users.names() == [] and not users.verify("alice", PASSWORD)
    assert not path.exists()


def test_add_then_verify_the_right_password_only(path):
    Users.load(path).add("alice", PASSWORD)
    users = Users.load(path)  # as another process would read it
    assert users.names() == ["alice"] and len(users) == 1
    assert users.verify("alice", PASSWORD)
    assert not users.verify("alice", PASSWORD + "!")
    assert not users.verify("Alice", PASSWORD)  # names are case-sensitive
    assert not users.verify("bob", PASSWORD)
    assert not users.verify("../x", PASSWORD) and not users.verify(None, None)  # bad input is just "no"


def test_the_file_holds_hashes_with_their_own_salt_and_no_plaintext(path):
    users = Users.load(path)
    users.add("alice", PASSWORD)
    users.add("bob", PASSWORD)
    text = path.read_text(encoding="utf-8")
    assert PASSWORD not in text and PASSWORD.encode().hex() not in text
    data = json.loads(text)
    assert (data["format"], data["version"]) == ("coach-users", 1)
    first, second = (u["password"] for u in data["users"])
    assert first.startswith("scrypt$16384$8$1$") and second.startswith("scrypt$16384$8$1$")
    assert first.split("$")[4] != second.split("$")[4]  # same password, different salts...
    assert first.split("$")[5] != second.split("$")[5]  # ...so different hashes
    assert all(set(u) == {"name", "password", "created"} and u["created"].endswith("+00:00") for u in data["users"])


def test_the_file_is_private(path):
    Users.load(path).add("alice", PASSWORD)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    Users.load(path).set_password("alice", "another password")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind


def test_an_unknown_user_costs_the_same_scrypt_as_a_known_one(path, monkeypatch):
    Users.load(path).add("alice", PASSWORD)
    users = Users.load(path)
    calls = []
    real = hashlib.scrypt

    def counting(password, **params):
        calls.append((params["n"], params["r"], params["p"]))
        return real(password, **params)
    monkeypatch.setattr(accounts.hashlib, "scrypt", counting)
    for name in ("alice", "nobody", "../../etc", ""):
        users.verify(name, "wrong password")
    assert calls == [(2**14, 8, 1)] * 4


def test_set_password_and_remove(path):
    users = Users.load(path)
    users.add("alice", PASSWORD)
    users.add("bob", PASSWORD)
    users.set_password("alice", "a new password")
    other = Users.load(path)
    assert other.verify("alice", "a new password") and not other.verify("alice", PASSWORD)
    users.remove("alice")
    assert other.names() == ["bob"] and not other.verify("alice", "a new password")  # seen without reloading
    with pytest.raises(InputError, match="no user named alice"):
        users.remove("alice")
    with pytest.raises(InputError, match="no user named carol"):
        users.set_password("carol", PASSWORD)


def test_info_gives_names_and_dates_never_hashes(path):
    Users.load(path).add("bob", PASSWORD)
    Users.load(path).add("alice", PASSWORD)
    info = Users.load(path).info()
    assert [u["name"] for u in info] == ["alice", "bob"] and all(set(u) == {"name", "created"} for u in info)


def test_adding_a_name_twice_is_an_error_even_in_another_form(path):
    users = Users.load(path)
    users.add("alice", PASSWORD)
    with pytest.raises(InputError, match="already a user named alice"):
        users.add("ａｌｉｃｅ", "other password")  # full-width: the same name after NFKC
    assert Users.load(path).verify("alice", PASSWORD)


@pytest.mark.parametrize("name", ["../x", "a b", "", "x" * 65, "a/b", "a\\b", "tab\there", "nl\n", "nul\x00",
                                  "..", "-", "bad\udcff"],
                         ids=["dotdot-slash", "space", "empty", "65-chars", "slash", "backslash", "tab",
                              "newline", "nul", "only-dots", "only-dash", "surrogate"])
def test_invalid_names_are_rejected_with_one_sentence(path, name):
    with pytest.raises(InputError) as raised:
        Users.load(path).add(name, PASSWORD)
    message = str(raised.value)
    assert message.endswith(".") and "\n" not in message
    assert not path.exists()


@pytest.mark.parametrize("name", ["张伟", "x" * 64, "a.b@example.com", "ana_maría-2", "Дмитрий", "हिन्दी"])
def test_valid_names_of_any_script_are_accepted(path, name):
    Users.load(path).add(name, PASSWORD)
    users = Users.load(path)
    assert users.names() == [name] and users.verify(name, PASSWORD)


@pytest.mark.parametrize("password", ["short", "", "x" * 1025, None])
def test_passwords_outside_8_to_1024_characters_are_rejected(path, password):
    with pytest.raises(InputError):
        Users.load(path).add("alice", password)
    assert not path.exists()


def test_full_width_password_matches_its_half_width_form(path):
    Users.load(path).add("alice", "ｐａｓｓｗｏｒｄ１")
    assert Users.load(path).verify("alice", "password1")


@pytest.mark.parametrize("content", [
    b"{not json",
    b"\xff\xfe garbage",
    b"",
    json.dumps({"format": "coach-users", "version": 2, "users": []}).encode(),
    json.dumps({"format": "coach-users", "version": "1", "users": []}).encode(),
    json.dumps({"format": "something-else", "version": 1, "users": []}).encode(),
    json.dumps({"format": "coach-users", "version": 1, "users": [{"name": "a", "password": "plain", "created": ""}]}).encode(),
    json.dumps({"format": "coach-users", "version": 1, "users": [{"name": "../x", "password": "scrypt$16384$8$1$"
                "AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "created": ""}]}).encode(),
    json.dumps([1, 2, 3]).encode(),
], ids=["corrupt-json", "not-utf8", "empty", "newer-version", "string-version", "other-format", "plain-password",
        "bad-name", "a-list"])
def test_a_damaged_or_foreign_file_gives_one_sentence_and_stays_untouched(run, path, content):
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(CoachError) as raised:
        Users.load(path)
    assert str(raised.value).endswith(".") and str(path) in str(raised.value)
    for args in (["users", "list"], ["users", "add", "bob", "--password-stdin"], ["users", "remove", "bob"]):
        result = run(*args, input=PASSWORD + "\n")
        assert result.exit_code == 1 and result.output.startswith("error: ") and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert path.read_bytes() == content


def test_a_damaged_file_message_from_the_command_is_one_line_without_a_traceback(path):
    path.parent.mkdir(parents=True)
    path.write_text('{"format": "coach-users", "version": 99, "users": []}', encoding="utf-8")
    proc = coach("users", "list")
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "newer version" in proc.stderr


def test_user_key_is_stable_and_path_safe():
    keys = {name: user_key(name) for name in ("../../etc", "alice", "张伟", "/", "", "a\udcff", "..")}
    assert all(len(k) == 24 and set(k) <= set("0123456789abcdef") for k in keys.values())
    assert len(set(keys.values())) == len(keys)
    assert user_key("alice") == hashlib.sha256(b"alice").hexdigest()[:24]  # stable across runs and versions
    assert user_key("ａｌｉｃｅ") == user_key("alice") and user_key("Alice") != user_key("alice")


# ---- the command -------------------------------------------------------------------------
def test_cli_add_with_password_stdin_list_and_remove(run, path, tmp_path):
    result = run("users", "list")
    assert result.exit_code == 0 and result.output == "No users: the app runs without a login.\n"
    result = run("users", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 0 and result.output == "Added user alice.\n"
    assert Users.load(path).verify("alice", PASSWORD)  # the line ending is not part of the password
    run("users", "add", "张伟", "--password-stdin", input="密码是八个字符吧\r\n")
    assert Users.load(path).verify("张伟", "密码是八个字符吧")
    listed = run("users", "list").output
    hashes = [u["password"] for u in json.loads(path.read_text(encoding="utf-8"))["users"]]
    assert [line.split()[0] for line in listed.splitlines()] == ["alice", "张伟"]
    assert "scrypt" not in listed and not any(h.split("$")[5] in listed for h in hashes) and PASSWORD not in listed
    result = run("users", "remove", "alice")
    folder = tmp_path / "home" / "users" / user_key("alice")
    assert result.exit_code == 0
    assert result.output == f"Removed user alice. Their history and documents stay in {folder} until you delete it.\n"
    assert Users.load(path).names() == ["张伟"]


def test_cli_add_prompts_twice_and_asks_again_for_a_short_or_mismatched_password(run, path):
    result = run("users", "add", "alice", input=f"short\n{PASSWORD}\nmistyped pw\n{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "at least 8" in result.output and "do not match" in result.output
    assert "Added user alice." in result.output and PASSWORD not in result.output  # hidden input is not echoed
    assert Users.load(path).verify("alice", PASSWORD)


def test_cli_passwd_changes_the_password(run, path):
    run("users", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    result = run("users", "passwd", "alice", "--password-stdin", input="a new password\n")
    assert result.exit_code == 0 and "alice" in result.output
    users = Users.load(path)
    assert users.verify("alice", "a new password") and not users.verify("alice", PASSWORD)


@pytest.mark.parametrize("args, stdin, words", [
    (["users", "add", "alice", "--password-stdin"], PASSWORD + "\n", "already a user named alice"),
    (["users", "add", "../x", "--password-stdin"], PASSWORD + "\n", "only letters"),
    (["users", "add", "bob", "--password-stdin"], "short\n", "at least 8"),
    (["users", "add", "bob", "--password-stdin"], "", "No password on stdin"),
    (["users", "remove", "nobody"], None, "no user named nobody"),
    (["users", "passwd", "nobody", "--password-stdin"], PASSWORD + "\n", "no user named nobody"),
], ids=["duplicate", "bad-name", "short-password", "no-password", "remove-missing", "passwd-missing"])
def test_cli_user_errors_are_one_sentence_without_a_traceback(path, args, stdin, words):
    assert coach("users", "add", "alice", "--password-stdin", input=PASSWORD + "\n").returncode == 0
    before = path.read_bytes()
    proc = coach(*args, input=stdin)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("error: ") and words in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert path.read_bytes() == before


def test_concurrent_adds_from_separate_processes_all_land_in_the_file(path):
    names = [f"user{i}" for i in range(8)]
    with ThreadPoolExecutor(len(names)) as pool:
        procs = list(pool.map(lambda n: coach("users", "add", n, "--password-stdin", input=f"{n}-password\n"), names))
    assert [p.returncode for p in procs] == [0] * len(names), [p.stderr for p in procs]
    users = Users.load(path)
    assert users.names() == names
    assert users.verify("user3", "user3-password") and not users.verify("user3", "user4-password")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# ---- accounts in PostgreSQL (replicas share them) ------------------------------------------------
def test_with_a_database_url_coach_users_keeps_accounts_in_the_database(postgres_url, tmp_path):
    from coach.accounts import DatabaseUsers, open_users

    env = {"COACH_DATABASE_URL": postgres_url}
    added = coach("users", "add", "alice", "--password-stdin", input="alice-pass-1\n", env=env)
    assert added.returncode == 0, added.stderr
    assert coach("users", "add", "张伟", "--password-stdin", input="zhang-pass-2\n", env=env).returncode == 0
    assert not (tmp_path / "home" / "users.json").exists()  # nothing on this machine's disk

    users = open_users(Settings.from_env(database_url=postgres_url))
    assert isinstance(users, DatabaseUsers) and users.names() == ["alice", "张伟"]
    assert users.verify("alice", "alice-pass-1") and not users.verify("alice", "zhang-pass-2")
    listed = coach("users", "list", env=env)
    assert "alice" in listed.stdout and "scrypt" not in listed.stdout

    duplicate = coach("users", "add", "alice", "--password-stdin", input="another-pass\n", env=env)
    assert duplicate.returncode == 1 and "already a user named alice" in duplicate.stderr
    assert "Traceback" not in duplicate.stderr
    assert coach("users", "passwd", "alice", "--password-stdin", input="new-pass-333\n", env=env).returncode == 0
    assert users.verify("alice", "new-pass-333") and not users.verify("alice", "alice-pass-1")
    assert coach("users", "remove", "张伟", env=env).returncode == 0
    assert not users.verify("张伟", "zhang-pass-2")
    assert DatabaseUsers(postgres_url).names() == ["alice"]
