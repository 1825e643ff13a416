"""The persisted index: FAISS vectors, SQLite units, JSON manifests. No pickle.

Layout of an index folder::

    index/
      CURRENT              name of the live generation, replaced atomically
      gen-000012.json      the generation's manifest: format, version, embedder, digests,
                           counts, sources and its segments with their file hashes
      seg-000009-0/        a segment, immutable once written
        vectors.faiss      faiss.write_index of an IndexFlatIP; row i is the segment's vector i
        units.sqlite       units (what a hit returns) and vectors (row -> unit, field)
      .lock                writers hold it across read-modify-write

A generation is a list of segments. Adding a document writes one new segment
holding only its chunks plus a new manifest that lists the old segments and
the new one, so its cost is its own chunks, not the whole index. Removing or
replacing a document rewrites only the segments that hold it.

Every write happens under one lock held from reading the current generation
to swapping ``CURRENT``; a writer that prepared its chunks outside the lock
re-reads the generation inside it, so two writers (two processes, or a CLI
and the web app) never lose each other's documents. Segments and the manifest
are written to temporary names, renamed into place, and only then is
``CURRENT`` swapped: a crash at any point leaves the previous generation
loadable. The two newest generations are kept so a reader still loading the
previous one finds its files.

Loading verifies everything before use, and the check cannot be switched off:
a manifest without file hashes is refused, each file must match its hash,
faiss row counts and dimensions must match the manifest, and every vector row
must point at a unit. Segments already verified are reused from a cache, so a
running app picks up a new generation by reading only the new segment.

A *unit* is one retrievable thing: a bank item or one chunk of a document.
It has a question field (``qtext``: a bank item's question in every phrasing,
or a Q&A chunk's question) and a body (``text``). Both are embedded (every
phrasing of a question gets its own vector) and both are BM25-tokenised, so
retrieval can weigh a match on the question above a match on the answer.

Versions 1 and 2 (one folder ``gen-N/`` with ``manifest.json``) are still read;
the next write turns them into a version-3 generation.
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
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import IndexStoreError

FORMAT = "coach-index"
VERSION = 3  # 3: generations of immutable segments; 2 added units.chunk_kind; 1 and 2 are still read
READABLE = (1, 2, 3)
FILES = ("vectors.faiss", "units.sqlite")
KEEP_GENERATIONS = 2


@dataclass
class Unit:
    kind: str  # "bank" or "doc"
    source: str  # "bank" or the document's name (its path relative to where it was ingested from)
    title: str
    text: str
    qtexts: list[str] = field(default_factory=list)  # phrasings of the question, each embedded
    ptexts: list[str] = field(default_factory=list)  # short statements of the body (key points), each embedded
    item_id: str = ""
    topic: str = ""
    position: int = 0
    source_hash: str = ""
    chunk_kind: str = ""  # for documents: "qa" (a question kept with its answer), "section" or "text"
    # the analysed text (retrieve.analyse: BM25 tokens and glossary terms), saved so that loading
    # does not tokenise every unit again; None when not known (a version-1/2 index, or not yet written)
    terms: dict | None = field(default=None, repr=False, compare=False)

    @property
    def group(self) -> str:
        """Units of one group are one answer: a bank item, or the chunks of one Q&A pair."""
        return f"bank:{self.item_id}" if self.kind == "bank" else f"doc:{self.source}#{self.title or self.position}"


@dataclass
class Segment:
    """A run of units (and their vectors) stored in one folder; ``name`` is None until written."""

    name: str | None
    units: int
    vectors: int
    files: dict = field(default_factory=dict)  # file name -> sha256


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
    segments: list[Segment] = field(default_factory=list)  # in unit order; empty: one unwritten segment
    generation: str = ""  # the generation this was loaded from or saved as; "" if never saved

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

    def segment_list(self) -> list[Segment]:
        """The segments, or one unwritten segment holding everything when none are recorded."""
        if sum(s.units for s in self.segments) == len(self.units) and sum(s.vectors for s in self.segments) == len(self.vectors):
            return list(self.segments)
        return [Segment(None, len(self.units), len(self.vectors))]

    def manifest(self) -> dict:
        return {
            "format": FORMAT, "version": VERSION, "embedder": self.embedder, "dim": self.dim,
            "bank_digest": self.bank_digest, "glossary_digest": self.glossary_digest,
            "counts": {"units": len(self.units), "bank_units": sum(u.kind == "bank" for u in self.units),
                       "doc_units": sum(u.kind == "doc" for u in self.units), "vectors": int(len(self.vectors))},
            "sources": self.sources(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }


# ---- building generations in memory (no embedding here: callers pass vectors) -------------------
def append(data: IndexData, units: list[Unit], vectors: np.ndarray, owners: list[int], fields: list[int]) -> IndexData:
    """``data`` plus ``units`` as one new segment; ``owners[i]`` is the position in ``units`` of vector i."""
    segments = data.segment_list() + ([Segment(None, len(units), len(vectors))] if units else [])
    base = len(data.units)
    return replace(
        data, units=data.units + units,
        vectors=np.vstack([data.vectors, np.asarray(vectors, np.float32).reshape(-1, data.dim)]).astype(np.float32),
        vec_unit=np.concatenate([data.vec_unit, np.array(owners, np.int64) + base]),
        vec_field=np.concatenate([data.vec_field, np.array(fields, np.int8)]),
        faiss_index=None, segments=segments, generation=data.generation,
    )


def subset(data: IndexData, keep: list[int]) -> IndexData:
    """The units at positions ``keep`` (ascending) with their vectors, renumbered. A segment that
    keeps all its units keeps its name (nothing to write); one that loses some becomes unwritten."""
    new_pos = {old: new for new, old in enumerate(keep)}
    rows = np.array([r for r, u in enumerate(data.vec_unit) if int(u) in new_pos], np.int64)
    kept_owner = data.vec_unit[rows] if len(rows) else np.zeros(0, np.int64)
    segments, start = [], 0
    for seg in data.segment_list():
        kept = sum(1 for i in range(start, start + seg.units) if i in new_pos)
        if kept == seg.units:
            segments.append(seg)
        elif kept:
            segments.append(Segment(None, kept, int(((kept_owner >= start) & (kept_owner < start + seg.units)).sum())))
        start += seg.units
    return replace(
        data, units=[data.units[i] for i in keep], vectors=data.vectors[rows] if len(rows) else data.vectors[:0],
        vec_unit=np.array([new_pos[int(data.vec_unit[r])] for r in rows], np.int64),
        vec_field=data.vec_field[rows] if len(rows) else data.vec_field[:0],
        faiss_index=None, segments=_merge_unwritten(segments),
    )


def _merge_unwritten(segments: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for seg in segments:
        if out and out[-1].name is None and seg.name is None:
            out[-1] = Segment(None, out[-1].units + seg.units, out[-1].vectors + seg.vectors)
        else:
            out.append(seg)
    return out


# ---- writing ------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def write_lock(index_dir: Path):
    """One writer at a time per index folder, across threads and processes (readers never block)."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def exists(index_dir: Path) -> bool:
    return (Path(index_dir) / "CURRENT").exists()


def current(index_dir: Path) -> str | None:
    """The name of the live generation, or None when there is no index.

    Read every time: a cache keyed by the file's stat signature was tried and dropped, because a
    writer's ``os.replace`` within one tick of the coarse file clock can reuse the inode with the
    same size and times, and the new generation would go unseen."""
    try:
        return (Path(index_dir) / "CURRENT").read_text(encoding="utf-8").strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def save(data: IndexData, index_dir: Path) -> IndexData:
    """Write ``data`` as the next generation under the write lock; returns it with its segments named."""
    with write_lock(index_dir):
        return write_generation(data, index_dir)


def write_generation(data: IndexData, index_dir: Path) -> IndexData:
    """Write ``data`` as the next generation; the caller holds :func:`write_lock`.

    Only unwritten segments are written; named ones must still be on disk (they are the
    current or previous generation's)."""
    index_dir = Path(index_dir)
    number = _next_generation(index_dir)
    gen = f"gen-{number:06d}"
    segments, unit_start, vec_start = [], 0, 0
    written: list[Path] = []
    try:
        for k, seg in enumerate(data.segment_list()):
            if seg.name is None or not (index_dir / seg.name).is_dir():
                name = f"seg-{number:06d}-{k}"
                tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=index_dir))
                written.append(tmp)
                files = _write_segment(data, unit_start, seg.units, vec_start, seg.vectors, tmp)
                os.replace(tmp, index_dir / name)
                written[-1] = index_dir / name
                seg = Segment(name, seg.units, seg.vectors, files)
            segments.append(seg)
            unit_start += seg.units
            vec_start += seg.vectors
        manifest = data.manifest()
        manifest["generation"] = number
        manifest["segments"] = [{"name": s.name, "units": s.units, "vectors": s.vectors, "files": s.files}
                                for s in segments]
        _atomic_write(index_dir / f"{gen}.json", json.dumps(manifest, ensure_ascii=False, indent=1))
    except BaseException:
        for path in written:
            shutil.rmtree(path, ignore_errors=True)
        raise
    _atomic_write(index_dir / "CURRENT", gen + "\n")
    _collect_garbage(index_dir)
    return replace(data, segments=segments, generation=gen)


def _next_generation(index_dir: Path) -> int:
    numbers = [int(p.name[4:10]) for p in index_dir.glob("gen-*") if p.name[4:10].isdigit()]
    return max(numbers, default=0) + 1


def _write_segment(data: IndexData, u0: int, nu: int, v0: int, nv: int, folder: Path) -> dict:
    import faiss

    index = faiss.IndexFlatIP(data.dim)
    if nv:
        index.add(np.ascontiguousarray(data.vectors[v0:v0 + nv], dtype=np.float32))
    faiss.write_index(index, str(folder / "vectors.faiss"))
    con = sqlite3.connect(folder / "units.sqlite")
    try:
        con.executescript(
            "CREATE TABLE units (id INTEGER PRIMARY KEY, kind TEXT, source TEXT, title TEXT, text TEXT,"
            " qtexts TEXT, ptexts TEXT, item_id TEXT, topic TEXT, position INTEGER, source_hash TEXT,"
            " chunk_kind TEXT, terms TEXT);"
            "CREATE TABLE vectors (row INTEGER PRIMARY KEY, unit INTEGER, field INTEGER);"
        )
        con.executemany(
            "INSERT INTO units VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(i, u.kind, u.source, u.title, u.text, json.dumps(u.qtexts, ensure_ascii=False),
              json.dumps(u.ptexts, ensure_ascii=False), u.item_id, u.topic, u.position, u.source_hash, u.chunk_kind,
              json.dumps(u.terms, ensure_ascii=False) if u.terms else None)
             for i, u in enumerate(data.units[u0:u0 + nu])],
        )
        con.executemany("INSERT INTO vectors VALUES (?,?,?)",
                        [(i, int(u) - u0, int(f)) for i, (u, f) in
                         enumerate(zip(data.vec_unit[v0:v0 + nv], data.vec_field[v0:v0 + nv]))])
        con.commit()
    finally:
        con.close()
    for name in FILES:
        with open(folder / name, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(folder)
    return {name: _sha256(folder / name) for name in FILES}


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


def _collect_garbage(index_dir: Path) -> None:
    """Keep the newest generations and what they use; remove the rest and any temporary leftovers
    (the caller holds the write lock, so no other writer owns them)."""
    gens = sorted((p for p in index_dir.iterdir() if p.name.startswith("gen-")), key=lambda p: p.name[4:10])
    keep_gens = {p.name[:10] for p in gens[-KEEP_GENERATIONS:]}
    used = set()
    for p in gens:
        if p.name[:10] in keep_gens:
            used.add(p.name)
            if p.suffix == ".json":
                with contextlib.suppress(OSError, ValueError):
                    used |= {s["name"] for s in json.loads(p.read_text(encoding="utf-8")).get("segments", [])}
    for p in index_dir.iterdir():
        stale = p.name.startswith((".seg-", ".gen-")) or (p.name.endswith(".tmp") and p.name != ".lock")
        old = p.name.startswith(("gen-", "seg-")) and p.name not in used
        if stale or old:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    p.unlink()


# ---- reading ------------------------------------------------------------------------------
def _damaged(index_dir: Path, what: str) -> IndexStoreError:
    return IndexStoreError(f"The index in {index_dir} is damaged ({what}); "
                           f"run `coach index build --index-dir {index_dir}` to rebuild it.")


def read_manifest(index_dir: Path) -> tuple[dict, list[dict]]:
    """The current generation's manifest and its segments (``name``, ``units``, ``vectors``, ``files``),
    checked for format, version and the presence of file hashes (not yet the hashes themselves)."""
    index_dir = Path(index_dir)
    gen = current(index_dir)
    if gen is None:
        raise IndexStoreError(f"No index in {index_dir}; run `coach index build` first.")
    if not gen.startswith("gen-") or "/" in gen or "\\" in gen or gen.startswith(".."):
        raise _damaged(index_dir, "CURRENT names no generation")
    legacy = index_dir / gen / "manifest.json"
    path = legacy if legacy.is_file() else index_dir / f"{gen}.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise _damaged(index_dir, "manifest unreadable") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") not in READABLE:
        version = manifest.get("version") if isinstance(manifest, dict) else None
        raise IndexStoreError(f"The index in {index_dir} has format version {version!r}, this coach reads "
                              f"version {VERSION}; run `coach index build --index-dir {index_dir}` to rebuild it.")
    if path is legacy:
        segments = [{"name": gen, "units": (manifest.get("counts") or {}).get("units"),
                     "vectors": (manifest.get("counts") or {}).get("vectors"), "files": manifest.get("files")}]
    else:
        segments = manifest.get("segments")
    if not isinstance(segments, list):
        raise _damaged(index_dir, "the manifest lists no segments")
    for seg in segments:
        files = seg.get("files") if isinstance(seg, dict) else None
        if not isinstance(files, dict) or set(files) != set(FILES) or not all(isinstance(v, str) for v in files.values()):
            raise _damaged(index_dir, "the manifest has no file hashes")
        name = seg.get("name")
        if not isinstance(name, str) or not name.startswith(("seg-", "gen-")) or "/" in name or ".." in name:
            raise _damaged(index_dir, "a segment has no valid name")
        if not isinstance(seg.get("units"), int) or not isinstance(seg.get("vectors"), int):
            raise _damaged(index_dir, "a segment has no counts")
    if not isinstance(manifest.get("dim"), int) or manifest["dim"] <= 0:
        raise _damaged(index_dir, "the manifest has no dimension")
    manifest["generation_name"] = gen
    return manifest, segments


def load(index_dir: Path, cache: dict | None = None) -> IndexData:
    """Load and verify the current generation. ``cache`` (name -> loaded segment) lets a caller that
    reloads often read only segments it has not seen; a generation replaced while it was being read
    is read again."""
    index_dir = Path(index_dir)
    for attempt in range(3):
        gen = current(index_dir)
        try:
            return _load(index_dir, {} if cache is None else cache)
        except _Vanished:
            if current(index_dir) == gen or attempt == 2:
                raise _damaged(index_dir, "a segment file is missing") from None
    raise AssertionError("unreachable")


class _Vanished(Exception):
    """A segment was removed while loading (a newer generation replaced it)."""


def _load(index_dir: Path, cache: dict) -> IndexData:
    manifest, segments = read_manifest(index_dir)
    dim = manifest["dim"]
    parts = []
    for seg in segments:
        key = (seg["name"], tuple(sorted(seg["files"].items())))
        part = cache.get(key)
        if part is None:
            part = _read_segment(index_dir, seg, dim)
            cache[key] = part
        parts.append(part)
    for key in [k for k in cache if k not in {(s["name"], tuple(sorted(s["files"].items()))) for s in segments}]:
        del cache[key]
    units = [u for p in parts for u in p["units"]]
    offsets = np.cumsum([0] + [len(p["units"]) for p in parts])
    vectors = np.vstack([p["vectors"] for p in parts]) if parts else np.zeros((0, dim), np.float32)
    vec_unit = np.concatenate([p["vec_unit"] + off for p, off in zip(parts, offsets)]) if parts else np.zeros(0, np.int64)
    vec_field = np.concatenate([p["vec_field"] for p in parts]) if parts else np.zeros(0, np.int8)
    counts = manifest.get("counts") or {}
    if counts.get("units") != len(units) or counts.get("vectors", len(vectors)) != len(vectors):
        raise _damaged(index_dir, "the counts do not match the manifest")
    data = IndexData(
        units=units, vectors=np.ascontiguousarray(vectors, dtype=np.float32), vec_unit=vec_unit.astype(np.int64),
        vec_field=vec_field.astype(np.int8), embedder=manifest["embedder"], dim=dim,
        bank_digest=manifest["bank_digest"], glossary_digest=manifest["glossary_digest"],
        segments=[Segment(s["name"], s["units"], s["vectors"], dict(s["files"])) for s in segments],
        generation=manifest["generation_name"],
    )
    if len(parts) == 1:
        data.faiss_index = parts[0]["faiss"]
    return data


def _read_segment(index_dir: Path, seg: dict, dim: int) -> dict:
    import faiss

    folder = index_dir / seg["name"]
    for name, digest in seg["files"].items():
        try:
            actual = _sha256(folder / name)
        except FileNotFoundError:
            raise _Vanished() from None
        except OSError:
            raise _damaged(index_dir, f"{name} unreadable") from None
        if actual != digest:
            raise _damaged(index_dir, f"{seg['name']}/{name} does not match its manifest")
    try:
        index = faiss.read_index(str(folder / "vectors.faiss"))
    except RuntimeError:
        raise _damaged(index_dir, "vectors unreadable") from None
    if index.d != dim or index.ntotal != seg["vectors"]:
        raise _damaged(index_dir, "the vectors do not match the manifest")
    vectors = index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, dim), np.float32)
    try:
        rows, vec = _read_units(folder / "units.sqlite")
        units = [Unit(k, s, t, x, json.loads(q), json.loads(pt), i, tp, p, h, ck or _infer_chunk_kind(k, t),
                      _terms(tm))
                 for k, s, t, x, q, pt, i, tp, p, h, ck, tm in rows]
    except (sqlite3.Error, ValueError, TypeError):
        raise _damaged(index_dir, "units unreadable") from None
    vec_unit = np.array([v[0] for v in vec], dtype=np.int64)
    if len(units) != seg["units"] or len(vec) != index.ntotal:
        raise _damaged(index_dir, "the units do not match the manifest")
    if len(vec_unit) and (vec_unit.min() < 0 or vec_unit.max() >= len(units)):
        raise _damaged(index_dir, "a vector points at no unit")
    return {"units": units, "vectors": np.ascontiguousarray(vectors, dtype=np.float32), "vec_unit": vec_unit,
            "vec_field": np.array([v[1] for v in vec], dtype=np.int8), "faiss": index}


def _read_units(path: Path) -> tuple[list, list]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        columns = {row[1] for row in con.execute("PRAGMA table_info(units)")}
        chunk_kind = "chunk_kind" if "chunk_kind" in columns else "''"  # version 1 had no chunk kinds
        terms = "terms" if "terms" in columns else "NULL"  # segments written before terms were saved
        rows = con.execute("SELECT kind, source, title, text, qtexts, ptexts, item_id, topic, position, source_hash,"
                           f" {chunk_kind}, {terms} FROM units ORDER BY id").fetchall()
        vec = con.execute("SELECT unit, field FROM vectors ORDER BY row").fetchall()
    finally:
        con.close()
    return rows, vec


def _terms(raw) -> dict | None:
    """A unit's saved analysis; anything but a JSON object is ignored (the retriever recomputes it)."""
    if not raw:
        return None
    value = json.loads(raw)
    return value if isinstance(value, dict) else None


def _infer_chunk_kind(kind: str, title: str) -> str:
    """A version-1 document chunk: a Q&A pair when its title reads as a question."""
    if kind != "doc":
        return ""
    from .ingest.qa import is_question

    return "qa" if title and is_question(title) else ("section" if title else "text")
