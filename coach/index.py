"""The persisted index: FAISS vectors, SQLite units, a JSON manifest. No pickle.

Layout of an index folder::

    index/
      CURRENT            name of the live generation, replaced atomically
      gen-000007/
        manifest.json    format, version, embedder, dimension, counts, digests, file hashes
        vectors.faiss    faiss.write_index of an IndexFlatIP; row i is vector i
        units.sqlite     units (what a hit returns) and vectors (row -> unit, field)

Every write builds a complete new generation in a temporary folder, renames
it into place and only then swaps ``CURRENT``: a crash at any point leaves the
previous generation loadable. Loading verifies the manifest and the hashes of
both files, so a truncated or edited index is reported, never half-used.

A *unit* is one retrievable thing: a bank item or one chunk of a document.
It has a question field (``qtext``: a bank item's question in every phrasing,
or a Q&A chunk's question) and a body (``text``). Both are embedded (every
phrasing of a question gets its own vector) and both are BM25-tokenised, so
retrieval can weigh a match on the question above a match on the answer.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import IndexStoreError

FORMAT = "coach-index"
VERSION = 2  # 2 added units.chunk_kind; version 1 is still read (see _read_units)
READABLE = (1, 2)


@dataclass
class Unit:
    kind: str  # "bank" or "doc"
    source: str  # "bank" or the document's file name
    title: str
    text: str
    qtexts: list[str] = field(default_factory=list)  # phrasings of the question, each embedded
    ptexts: list[str] = field(default_factory=list)  # short statements of the body (key points), each embedded
    item_id: str = ""
    topic: str = ""
    position: int = 0
    source_hash: str = ""
    chunk_kind: str = ""  # for documents: "qa" (a question kept with its answer), "section" or "text"

    @property
    def group(self) -> str:
        """Units of one group are one answer: a bank item, or the chunks of one Q&A pair."""
        return f"bank:{self.item_id}" if self.kind == "bank" else f"doc:{self.source}#{self.title or self.position}"


@dataclass
class IndexData:
    """A whole generation in memory: units, their vectors and what each vector is."""

    units: list[Unit]
    vectors: np.ndarray  # (n_vectors, dim) float32, unit length
    vec_unit: np.ndarray  # (n_vectors,) int: index into units
    vec_field: np.ndarray  # (n_vectors,) int8: 0 question, 1 body
    embedder: str
    dim: int
    bank_digest: str
    glossary_digest: str
    faiss_index: object = None  # the loaded faiss index; built on demand when None

    def search_index(self):
        """The faiss index over ``vectors`` (row i is vector i)."""
        import faiss

        # One query at a time: OpenMP threads only add contention on a 2-core machine.
        faiss.omp_set_num_threads(1)
        if self.faiss_index is None:
            self.faiss_index = faiss.IndexFlatIP(self.dim)
            if len(self.vectors):
                self.faiss_index.add(self.vectors)
        return self.faiss_index

    def sources(self) -> dict[str, dict]:
        """Document sources with their chunk counts and content hash."""
        out: dict[str, dict] = {}
        for u in self.units:
            if u.kind == "doc":
                entry = out.setdefault(u.source, {"chunks": 0, "sha256": u.source_hash})
                entry["chunks"] += 1
        return out

    def manifest(self) -> dict:
        return {
            "format": FORMAT, "version": VERSION, "embedder": self.embedder, "dim": self.dim,
            "bank_digest": self.bank_digest, "glossary_digest": self.glossary_digest,
            "counts": {"units": len(self.units), "bank_units": sum(u.kind == "bank" for u in self.units),
                       "doc_units": sum(u.kind == "doc" for u in self.units), "vectors": int(len(self.vectors))},
            "sources": self.sources(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def write_lock(index_dir: Path):
    """One writer at a time per index folder (readers never block)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def exists(index_dir: Path) -> bool:
    return (index_dir / "CURRENT").exists()


def save(data: IndexData, index_dir: Path) -> Path:
    """Write ``data`` as a new generation and make it current; returns its folder."""
    index_dir = Path(index_dir)
    with write_lock(index_dir):
        gen = f"gen-{_next_generation(index_dir):06d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".{gen}-", dir=index_dir))
        try:
            _write_generation(data, tmp)
            os.replace(tmp, index_dir / gen)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _atomic_write(index_dir / "CURRENT", gen + "\n")
        _remove_old_generations(index_dir, keep=gen)
    return index_dir / gen


def _next_generation(index_dir: Path) -> int:
    numbers = [int(p.name[4:]) for p in index_dir.glob("gen-*") if p.name[4:].isdigit()]
    return max(numbers, default=0) + 1


def _write_generation(data: IndexData, folder: Path) -> None:
    import faiss

    index = faiss.IndexFlatIP(data.dim)
    if len(data.vectors):
        index.add(np.ascontiguousarray(data.vectors, dtype=np.float32))
    faiss.write_index(index, str(folder / "vectors.faiss"))
    _write_sqlite(data, folder / "units.sqlite")
    manifest = data.manifest()
    manifest["files"] = {name: _sha256(folder / name) for name in ("vectors.faiss", "units.sqlite")}
    _atomic_write(folder / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1))
    _fsync_dir(folder)


def _write_sqlite(data: IndexData, path: Path) -> None:
    con = sqlite3.connect(path)
    try:
        con.executescript(
            "CREATE TABLE units (id INTEGER PRIMARY KEY, kind TEXT, source TEXT, title TEXT, text TEXT,"
            " qtexts TEXT, ptexts TEXT, item_id TEXT, topic TEXT, position INTEGER, source_hash TEXT,"
            " chunk_kind TEXT);"
            "CREATE TABLE vectors (row INTEGER PRIMARY KEY, unit INTEGER, field INTEGER);"
        )
        con.executemany(
            "INSERT INTO units VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [(i, u.kind, u.source, u.title, u.text, json.dumps(u.qtexts, ensure_ascii=False),
              json.dumps(u.ptexts, ensure_ascii=False), u.item_id, u.topic, u.position, u.source_hash, u.chunk_kind)
             for i, u in enumerate(data.units)],
        )
        con.executemany("INSERT INTO vectors VALUES (?,?,?)",
                        [(i, int(u), int(f)) for i, (u, f) in enumerate(zip(data.vec_unit, data.vec_field))])
        con.commit()
    finally:
        con.close()


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_old_generations(index_dir: Path, keep: str) -> None:
    for p in index_dir.iterdir():
        if p.is_dir() and p.name != keep and (p.name.startswith("gen-") or p.name.startswith(".gen-")):
            shutil.rmtree(p, ignore_errors=True)


def read_manifest(index_dir: Path) -> tuple[dict, Path]:
    """The current generation's verified manifest and folder."""
    index_dir = Path(index_dir)
    hint = f"run `coach index build --index-dir {index_dir}` to rebuild it"
    try:
        gen = (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise IndexStoreError(f"No index in {index_dir}; run `coach index build` first.") from None
    folder = index_dir / gen
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise IndexStoreError(f"The index in {index_dir} is damaged (manifest unreadable); {hint}.") from None
    if manifest.get("format") != FORMAT or manifest.get("version") not in READABLE:
        raise IndexStoreError(f"The index in {index_dir} has format version {manifest.get('version')!r}, "
                              f"this coach reads version {VERSION}; {hint}.")
    for name, digest in (manifest.get("files") or {}).items():
        if not (folder / name).exists() or _sha256(folder / name) != digest:
            raise IndexStoreError(f"The index in {index_dir} is damaged ({name} does not match its manifest); {hint}.")
    return manifest, folder


def load(index_dir: Path) -> IndexData:
    """Load and verify the current generation."""
    import faiss

    manifest, folder = read_manifest(index_dir)
    index = faiss.read_index(str(folder / "vectors.faiss"))
    vectors = index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, manifest["dim"]), np.float32)
    try:
        rows, vec = _read_units(folder / "units.sqlite")
    except (sqlite3.Error, ValueError):
        raise IndexStoreError(f"The index in {index_dir} is damaged (units unreadable); "
                              "run `coach index build` to rebuild it.") from None
    units = [Unit(k, s, t, x, json.loads(q), json.loads(pt), i, tp, p, h, ck or _infer_chunk_kind(k, t))
             for k, s, t, x, q, pt, i, tp, p, h, ck in rows]
    if len(vec) != len(vectors) or len(units) != manifest["counts"]["units"]:
        raise IndexStoreError(f"The index in {index_dir} is inconsistent; run `coach index build` to rebuild it.")
    return IndexData(
        units=units, vectors=np.ascontiguousarray(vectors, dtype=np.float32),
        vec_unit=np.array([v[0] for v in vec], dtype=np.int64), vec_field=np.array([v[1] for v in vec], dtype=np.int8),
        embedder=manifest["embedder"], dim=manifest["dim"],
        bank_digest=manifest["bank_digest"], glossary_digest=manifest["glossary_digest"], faiss_index=index,
    )


def _read_units(path: Path) -> tuple[list, list]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        columns = {row[1] for row in con.execute("PRAGMA table_info(units)")}
        chunk_kind = "chunk_kind" if "chunk_kind" in columns else "''"  # version 1 had no chunk kinds
        rows = con.execute("SELECT kind, source, title, text, qtexts, ptexts, item_id, topic, position, source_hash,"
                           f" {chunk_kind} FROM units ORDER BY id").fetchall()
        vec = con.execute("SELECT unit, field FROM vectors ORDER BY row").fetchall()
    finally:
        con.close()
    return rows, vec


def _infer_chunk_kind(kind: str, title: str) -> str:
    """A version-1 document chunk: a Q&A pair when its title reads as a question."""
    if kind != "doc":
        return ""
    from .ingest.qa import is_question

    return "qa" if title and is_question(title) else ("section" if title else "text")
