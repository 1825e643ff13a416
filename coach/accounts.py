"""User accounts: a small JSON file of names and scrypt password hashes.

The file (``COACH_HOME/users.json``, or ``COACH_USERS_FILE``) is plain JSON, never
pickle, with a format name and version checked on every load. It holds no plaintext
password: each one is ``scrypt$n$r$p$salt$hash`` with its own random salt, checked in
constant time; an unknown name costs the same scrypt run as a known one, so names
cannot be probed by timing. Every change re-reads the file under an exclusive lock on
a lock file beside it, then replaces it atomically (temporary file, fsync,
``os.replace``) with mode 0600, so two ``coach users add`` at once keep both users and
a crash never leaves half a file. Names are compared after NFKC normalization; the rest
of the app keys per-user folders by ``user_key(name)``, so a name never becomes a path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import unicodedata
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .errors import CoachError, InputError

FORMAT = "coach-users"
VERSION = 1

MAX_NAME_CHARS = 64
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
NAME_PUNCTUATION = "_.@-"

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32
_MAXMEM = 64 * 2**20  # bytes scrypt may use; n=2**14, r=8 needs 16 MiB
# a stored hash may name other parameters (a later version's), within these bounds
_MAX_N, _MAX_R, _MAX_P = 2**20, 32, 16
_DUMMY = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${'A' * 22}==${'A' * 43}="  # never matches: no password hashes to zeros
_NAME_CATEGORIES = ("Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Nd")  # letters of any script, their marks, digits


def users_path(settings) -> Path:
    """Where the users file is: ``COACH_USERS_FILE`` if set, else ``settings.home / "users.json"``."""
    value = os.environ.get("COACH_USERS_FILE", "").strip()
    return Path(value).expanduser() if value else Path(settings.home) / "users.json"


def user_key(name: str) -> str:
    """A stable, filesystem-safe id for a user (24 hex characters), for per-user folders.

    Any string gives a key, so a name that is not a valid user name still never becomes a path."""
    normalized = unicodedata.normalize("NFKC", str(name))
    return hashlib.sha256(normalized.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def check_name(name) -> str:
    """The user name, NFKC-normalized, or ``InputError`` with one sentence."""
    if not isinstance(name, str):
        raise InputError("The user name must be text.")
    if len(name) > 4 * MAX_NAME_CHARS:  # before normalizing, which can lengthen a string
        raise InputError(f"The user name is too long; use at most {MAX_NAME_CHARS} characters.")
    name = unicodedata.normalize("NFKC", name)
    if not name:
        raise InputError("The user name is empty; give a name of 1 to 64 letters, digits or _ . @ -.")
    if len(name) > MAX_NAME_CHARS:
        raise InputError(f"The user name has {len(name)} characters; use at most {MAX_NAME_CHARS}.")
    if not all(ch in NAME_PUNCTUATION or unicodedata.category(ch) in _NAME_CATEGORIES for ch in name):
        raise InputError("The user name may hold only letters, digits and _ . @ - (no spaces, slashes "
                         "or control characters); choose another.")
    if not any(unicodedata.category(ch)[0] in "LN" for ch in name):
        raise InputError("The user name needs at least one letter or digit; choose another.")
    return name


def check_password(password) -> str:
    """The password, NFKC-normalized (so full- and half-width forms match), or ``InputError``."""
    if not isinstance(password, str):
        raise InputError("The password must be text.")
    if len(password) > 4 * MAX_PASSWORD_CHARS:
        raise InputError(f"The password is too long; use at most {MAX_PASSWORD_CHARS} characters.")
    password = unicodedata.normalize("NFKC", password)
    if any("\ud800" <= ch <= "\udfff" for ch in password):
        raise InputError("The password is not valid text; type it again in UTF-8.")
    if len(password) < MIN_PASSWORD_CHARS:
        raise InputError(f"The password has {len(password)} characters; use at least {MIN_PASSWORD_CHARS}.")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InputError(f"The password has {len(password)} characters; use at most {MAX_PASSWORD_CHARS}.")
    return password


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` for a checked password, with a new random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)])


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p,
                          dklen=HASH_BYTES, maxmem=_MAXMEM)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _parse_hash(stored) -> tuple[int, int, int, bytes, bytes] | None:
    """(n, r, p, salt, hash) of a stored hash, or None if it is not one this version can check."""
    if not isinstance(stored, str):
        return None
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(x.isascii() and x.isdigit() for x in parts[1:4]):
        return None
    n, r, p = (int(x) for x in parts[1:4])
    if not (1 < n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        return None
    try:
        salt, digest = (base64.b64decode(x.encode("ascii"), validate=True) for x in parts[4:])
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    if len(salt) < 8 or len(digest) != HASH_BYTES:
        return None
    return n, r, p, salt, digest


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Users:
    """The accounts in one users file. Reads are cheap (the file is re-read when it changed on
    disk, so a running app sees ``coach users add|remove`` at once); changes lock, re-read and
    replace the file."""

    def __init__(self, path: Path, users: dict[str, dict], stamp=None):
        self.path = Path(path)
        self._users = users  # normalized name -> {"name", "password", "created"}, in file order
        self._stamp = stamp

    @classmethod
    def load(cls, path) -> "Users":
        """The users in ``path``; a missing file means no users. A damaged or foreign file is a ``CoachError``."""
        path = Path(path)
        users, stamp = _read(path)
        return cls(path, users, stamp)

    # ---- reading ----------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        """Re-read the file if it changed on disk since it was read (or always, with ``force``)."""
        if force or _stamp(self.path) != self._stamp:
            self._users, self._stamp = _read(self.path)

    def names(self) -> list[str]:
        """The user names, sorted."""
        self.refresh()
        return sorted(self._users)

    def info(self) -> list[dict]:
        """``{"name", "created"}`` for each user, sorted by name; never the password hash."""
        self.refresh()
        return [{"name": name, "created": self._users[name]["created"]} for name in sorted(self._users)]

    def __len__(self) -> int:
        self.refresh()
        return len(self._users)

    def __contains__(self, name) -> bool:
        self.refresh()
        try:
            return check_name(name) in self._users
        except InputError:
            return False

    def verify(self, name, password) -> bool:
        """True if ``password`` is the password of user ``name``.

        Never raises for bad input, and costs one scrypt run whether or not the user exists. The file
        is always re-read first (it is small), so a changed or removed user is never let in."""
        self.refresh(force=True)
        try:
            entry = self._users.get(check_name(name))
        except InputError:
            entry = None
        if not isinstance(password, str) or len(password) > 4 * MAX_PASSWORD_CHARS:
            password, entry = "", None
        password = unicodedata.normalize("NFKC", password)
        n, r, p, salt, digest = _parse_hash(entry["password"] if entry else _DUMMY)
        try:
            candidate = _scrypt(password, salt, n, r, p)
        except (ValueError, MemoryError):  # parameters this machine cannot run: no match
            return False
        return hmac.compare_digest(candidate, digest) and entry is not None

    # ---- changing ---------------------------------------------------------------
    def add(self, name, password) -> str:
        """Add a user; returns the stored (normalized) name. An existing name is an ``InputError``."""
        name, hashed = check_name(name), hash_password(check_password(password))
        with self._changing() as users:
            if name in users:
                raise InputError(f"There is already a user named {name}; choose another name or change "
                                 f"their password with `coach users passwd {name}`.")
            users[name] = {"name": name, "password": hashed, "created": _now()}
        return name

    def set_password(self, name, password) -> None:
        """Give an existing user a new password (with a new salt)."""
        name, hashed = check_name(name), hash_password(check_password(password))
        with self._changing() as users:
            self._require(users, name)
            users[name] = {**users[name], "password": hashed}

    def remove(self, name) -> None:
        """Remove a user; a missing one is an ``InputError``."""
        name = check_name(name)
        with self._changing() as users:
            self._require(users, name)
            del users[name]

    @staticmethod
    def _require(users: dict, name: str) -> None:
        if name not in users:
            raise InputError(f"There is no user named {name}; `coach users list` shows the users.")

    @contextmanager
    def _changing(self):
        """The current users, read under an exclusive lock; written back atomically if the block succeeds."""
        import fcntl

        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            lock = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise CoachError(f"Cannot write the users file in {folder} ({exc.strerror}); "
                             "check that the folder exists and you may write to it.") from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            users, _ = _read(self.path)
            yield users
            _write(self.path, users)
            self._users, self._stamp = users, _stamp(self.path)
        finally:
            os.close(lock)  # closing releases the lock


def _stamp(path: Path):
    """What identifies one version of the file on disk (None when there is none)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError:
        return ("unreadable",)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _damaged(path: Path) -> CoachError:
    return CoachError(f"The users file {path} is not a users file of this version; restore it from a backup "
                      "or remove it and add the users again with `coach users add`.")


def _read(path: Path) -> tuple[dict[str, dict], object]:
    """The users in the file (normalized name -> entry) and its stamp; no file is no users."""
    try:
        with open(path, "rb") as f:
            stamp = _stamp_of(f)
            raw = f.read()
    except FileNotFoundError:
        return {}, None
    except IsADirectoryError:
        raise _damaged(path) from None
    except OSError as exc:
        raise CoachError(f"Cannot read the users file {path} ({exc.strerror}); check its permissions.") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _damaged(path) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _damaged(path)
    version = data.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise CoachError(f"The users file {path} was written by a newer version of the coach (format "
                         f"version {version}); upgrade the coach, or remove the file and add the users again "
                         "with `coach users add`.")
    if version != VERSION or isinstance(version, bool) or not isinstance(data.get("users"), list):
        raise _damaged(path)
    users: dict[str, dict] = {}
    for entry in data["users"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("created"), str) \
                or _parse_hash(entry.get("password")) is None:
            raise _damaged(path)
        try:
            name = check_name(entry.get("name"))
        except InputError:
            raise _damaged(path) from None
        if name in users:
            raise _damaged(path)
        users[name] = {"name": name, "password": entry["password"], "created": entry["created"]}
    return users, stamp


def _stamp_of(f) -> tuple:
    st = os.fstat(f.fileno())
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _write(path: Path, users: dict[str, dict]) -> None:
    """Replace the file atomically: a temporary file in the same folder, fsync, ``os.replace``; mode 0600."""
    data = {"format": FORMAT, "version": VERSION, "users": list(users.values())}
    payload = (json.dumps(data, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise CoachError(f"Cannot write the users file in {path.parent} ({exc.strerror}); "
                         "check that you may write to that folder.") from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise CoachError(f"Cannot write the users file {path} ({exc.strerror}); check the disk and its "
                         "permissions.") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# ---- the same accounts in PostgreSQL -------------------------------------------------------
def open_users(settings) -> Users:
    """The accounts of this deployment: the users file, or the ``users`` table when
    ``COACH_DATABASE_URL`` is set (so every replica and `coach users` see the same ones)."""
    url = getattr(settings, "database_url", "")
    return DatabaseUsers(url) if url else Users.load(users_path(settings))


class DatabaseUsers(Users):
    """``Users`` kept in PostgreSQL (``history.pg004_users``): same names, hashes and checks.
    Reads are cached for a second (every request asks whether there are users); ``verify``
    always reads the row; a change is one transaction under an advisory lock."""

    RECHECK_S = 1.0

    def __init__(self, url: str):
        super().__init__(Path("users"), {}, None)
        self.url = url
        self._read_at = None
        self.refresh(force=True)

    def _history(self):
        from .history import History

        return History(self.url)

    def refresh(self, force: bool = False) -> None:
        import time

        now = time.monotonic()
        if not force and self._read_at is not None and now - self._read_at < self.RECHECK_S:
            return
        with self._history() as history:
            self._users = _rows(history.db)
        self._read_at = now

    @contextmanager
    def _changing(self):
        from .history import _lock_key

        with self._history() as history, history._write() as db:
            db.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key("users"),))
            users = _rows(db)
            before = {name: dict(entry) for name, entry in users.items()}
            yield users
            for name in before.keys() - users.keys():
                db.execute("DELETE FROM users WHERE name = ?", (name,))
            for name, entry in users.items():
                if before.get(name) != entry:
                    db.execute("INSERT INTO users (name, password, created) VALUES (?, ?, ?) ON CONFLICT (name) "
                               "DO UPDATE SET password = excluded.password", (name, entry["password"], entry["created"]))
        self._users, self._read_at = users, None


def _rows(db) -> dict[str, dict]:
    return {r["name"]: {"name": r["name"], "password": r["password"], "created": r["created"]}
            for r in db.execute("SELECT name, password, created FROM users ORDER BY name").fetchall()}
