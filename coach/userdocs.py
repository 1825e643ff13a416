"""A user's own documents in PostgreSQL, so that any replica can serve them.

With ``COACH_DATABASE_URL`` set, a signed-in user's uploads are not files under their home but
rows: ``user_documents`` (name, content hash) and ``user_units`` (each chunk as JSON with its
vectors as float32 bytes), plus ``user_generations``, a counter bumped by every change. Each
replica keeps the shared bank index in memory (from its own disk) and builds a user's small
document index from these rows on demand; it checks the counter at most once a second, so an
upload on one replica is seen on the others within a second, and by the uploader at once.

A change (an upload, a removal) is one transaction under the user's advisory lock (the same
lock as their history writes): it reads the user's documents, decides what changes exactly
as the file-backed index does (``KnowledgeBase.ingest``), then rewrites that user's rows and
bumps the counter. A user's documents are small (a few files, hundreds of chunks), so
rewriting them whole keeps the code obvious. The schema is in ``history.PG_MIGRATIONS``.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager

import numpy as np

from .errors import CoachError
from .history import History, iso, utcnow
from .index import IndexData, Unit
from .knowledge import KnowledgeBase

RECHECK_S = 1.0  # how often a replica asks whether another one changed this user's documents


class DatabaseDocuments(KnowledgeBase):
    """``KnowledgeBase(settings, shared=...)`` whose documents live in PostgreSQL."""

    def __init__(self, settings, progress, shared):
        super().__init__(settings, progress, shared)
        if not settings.user:
            raise CoachError("A user's documents in the database need the user's key.")
        self._loaded = None  # the generation counter self._data was read at
        self._checked = 0.0
        self._tx = None  # the connection of the change in progress (inside _locked)

    def _history(self) -> History:
        return History(self.settings.database_url, user=self.settings.user)

    # ---- reading ----------------------------------------------------------
    @property
    def data(self) -> IndexData:
        now = time.monotonic()
        if self._data is not None and now - self._checked < RECHECK_S:
            return self._data
        with self._history() as history:
            generation = _generation(history.db, self.settings.user)
            self._checked = now
            if self._data is None or generation != self._loaded:
                with self._loading:
                    self._data, self._loaded = self._read(history.db), generation
        return self._data

    def refresh(self) -> None:
        self._checked = 0.0
        self.data  # noqa: B018

    def _read(self, db) -> IndexData:
        rows = db.execute("SELECT unit, vectors, fields FROM user_units WHERE user_key = ? ORDER BY position",
                          (self.settings.user,)).fetchall()
        units, vectors, vec_unit, vec_field = [], [], [], []
        dim = self.embedder.dim
        for n, row in enumerate(rows):
            units.append(_unit(json.loads(row["unit"])))
            vecs = np.frombuffer(bytes(row["vectors"]), dtype=np.float32).reshape(-1, dim)
            vectors.append(vecs)
            vec_unit += [n] * len(vecs)
            vec_field += list(np.frombuffer(bytes(row["fields"]), dtype=np.int8))
        data = IndexData(units, np.vstack(vectors) if vectors else np.zeros((0, dim), np.float32),
                         np.array(vec_unit, dtype=np.int64), np.array(vec_field, dtype=np.int8), self.embedder.id,
                         dim, "", self.bank.glossary_digest, generation=f"db-{len(units)}")
        stamp = db.execute("SELECT embedder, glossary_digest FROM user_generations WHERE user_key = ?",
                           (self.settings.user,)).fetchone()
        if units and stamp is not None and (stamp["embedder"] != self.embedder.id
                                            or stamp["glossary_digest"] != self.bank.glossary_digest):
            data = self._rebuild(docs=data.units)  # another model or glossary: embed the texts again (not saved)
        return data

    # ---- changing ---------------------------------------------------------
    @contextmanager
    def _locked(self):
        with self._history() as history, history._write() as db:
            self._tx = db
            try:
                yield self._read(db)
            finally:
                self._tx = None

    def _commit(self, data: IndexData) -> None:
        if self._tx is None:
            raise CoachError("A change to a user's documents must run inside _locked().")
        user, db = self.settings.user, self._tx
        db.execute("DELETE FROM user_documents WHERE user_key = ?", (user,))
        now = iso(utcnow())
        for name, info in data.sources().items():
            db.execute("INSERT INTO user_documents (user_key, name, sha256, added_at) VALUES (?, ?, ?, ?)",
                       (user, name, info["sha256"], now))
        rows = []
        for n, unit in enumerate(data.units):
            mine = np.flatnonzero(data.vec_unit == n)
            rows.append((user, unit.source, n, json.dumps(_unit_json(unit), ensure_ascii=False),
                         np.ascontiguousarray(data.vectors[mine], dtype=np.float32).tobytes(),
                         data.vec_field[mine].astype(np.int8).tobytes()))
        if rows:
            db.executemany("INSERT INTO user_units (user_key, name, position, unit, vectors, fields) "
                           "VALUES (?, ?, ?, ?, ?, ?)", rows)
        generation = db.execute(
            "INSERT INTO user_generations (user_key, generation, embedder, glossary_digest) VALUES (?, 1, ?, ?) "
            "ON CONFLICT (user_key) DO UPDATE SET generation = user_generations.generation + 1, "
            "embedder = excluded.embedder, glossary_digest = excluded.glossary_digest RETURNING generation",
            (user, self.embedder.id, self.bank.glossary_digest)).fetchone()[0]
        with self._loading:
            data.generation = f"db-{generation}"
            self._data, self._loaded, self._checked = data, generation, time.monotonic()
            self._retriever = None

    def build(self, doc_paths=()):
        raise CoachError("A user's documents in the database are added one upload at a time; "
                         "there is nothing to rebuild.")


def _generation(db, user: str) -> int:
    row = db.execute("SELECT generation FROM user_generations WHERE user_key = ?", (user,)).fetchone()
    return int(row["generation"]) if row else 0


_FIELDS = ("kind", "source", "title", "text", "qtexts", "ptexts", "item_id", "topic", "position", "source_hash",
           "chunk_kind", "terms")


def _unit_json(unit: Unit) -> dict:
    return {name: getattr(unit, name) for name in _FIELDS}


def _unit(raw: dict) -> Unit:
    return Unit(**{name: raw[name] for name in _FIELDS if name in raw})
