"""The knowledge base: the bank and the user's documents, indexed and searchable.

This is the one entry point the CLI, the web app, the grader and the
benchmarks share. It loads the index, rebuilds what is stale, adds and
removes documents, and searches:

- no index yet: build the bank part (progress reported);
- the bank changed: re-embed the bank, keep the documents' vectors;
- the glossary or the embedder changed: re-embed everything from the texts
  stored in the index;
- adding documents embeds only the new chunks.

Every change is written as a new index generation (see ``index.py``), so a
failure part-way leaves the index as it was.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np

from . import index as store
from .bank import Bank, BankItem
from .config import Settings
from .errors import CoachError, IngestError
from .index import IndexData, Unit
from .retrieve import Hit, Lookup, Retriever
from .text import meaningful_length

# progress(stage, done, total): every long step reports through it
Progress = Callable[[str, int, int], None]


def _quiet(stage: str, done: int, total: int) -> None:
    pass


@dataclass
class IngestReport:
    added: dict[str, int] = field(default_factory=dict)  # source -> chunks
    unchanged: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # file name -> one sentence


def bank_unit(item: BankItem) -> Unit:
    points = "\n".join(f"- {kp.point}" for kp in item.key_points)
    return Unit(kind="bank", source="bank", title=item.question, text=f"{item.answer}\n要点:\n{points}",
                qtexts=[*item.all_questions, " ".join(item.tags)], ptexts=[kp.point for kp in item.key_points],
                item_id=item.id, topic=item.topic)


def doc_unit(chunk, digest: str) -> Unit:
    """A document chunk as a unit: only a Q&A pair has a question field.

    A title such as "relu" or "Adam" is a topic more than a question, and one word embeds
    poorly, so a short question is embedded with the start of its answer.
    """
    qtexts = []
    if chunk.kind == "qa" and chunk.title:
        short = meaningful_length(chunk.title) <= SHORT_TITLE
        qtexts = [f"{chunk.title}：{chunk.text[:80]}" if short else chunk.title]
    return Unit(kind="doc", source=chunk.source, title=chunk.title, text=chunk.text, qtexts=qtexts,
                position=chunk.position, source_hash=digest, chunk_kind=chunk.kind)


SHORT_TITLE = 6  # meaningful characters


class KnowledgeBase:
    def __init__(self, settings: Settings | None = None, progress: Progress | None = None):
        self.settings = settings or Settings.from_env()
        self.progress = progress or _quiet
        self._data: IndexData | None = None
        self._retriever: Retriever | None = None
        self._catalog: tuple[IndexData, Bank] | None = None
        self._relevance_model = None  # None: the shipped weights (see set_relevance_model)

    @cached_property
    def bank(self) -> Bank:
        return Bank.load(self.settings.corpus_dir)

    @cached_property
    def embedder(self):
        from .embeddings import make_embedder

        return make_embedder(self.settings.embedder)

    @cached_property
    def reranker(self):
        if not self.settings.reranker:
            return None
        from .retrieve import CrossEncoderReranker

        return CrossEncoderReranker(self.settings.reranker)

    # ---- loading -------------------------------------------------------
    @property
    def data(self) -> IndexData:
        if self._data is None:
            self._data = self._load_fresh()
        return self._data

    @property
    def catalog(self) -> Bank:
        """The bank plus the Q&A pairs of the user's documents as items (see ``documents.py``)."""
        data = self.data
        if self._catalog is None or self._catalog[0] is not data:
            from .documents import catalog

            self._catalog = (data, catalog(self.bank, data))
        return self._catalog[1]

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            self._retriever = Retriever(self.data, self.embedder, self.bank.glossary, self.reranker,
                                        model=self._relevance_model)
        return self._retriever

    def _load_fresh(self) -> IndexData:
        index_dir = self.settings.index_dir
        if not store.exists(index_dir):
            return self._save(self._rebuild(docs=[]))
        data = store.load(index_dir)
        if data.embedder != self.embedder.id or data.glossary_digest != self.bank.glossary_digest:
            return self._save(self._rebuild(docs=[u for u in data.units if u.kind == "doc"]))
        if data.bank_digest != self.bank.digest:
            return self._save(self._replace_bank(data))
        return data

    # ---- building ------------------------------------------------------
    def build(self, doc_paths: list[Path] = ()) -> IngestReport:
        """A fresh index of the bank plus ``doc_paths``."""
        report, units = self._chunk_files(doc_paths, existing={})
        self._commit(self._rebuild(docs=units))
        return report

    def ingest(self, paths: list[Path]) -> IngestReport:
        """Add documents; files already indexed with the same content are skipped."""
        data = self.data
        existing = {name: info["sha256"] for name, info in data.sources().items()}
        report, units = self._chunk_files(paths, existing)
        if units:
            replaced = set(report.added)
            kept = [i for i, u in enumerate(data.units) if not (u.kind == "doc" and u.source in replaced)]
            self._commit(self._extend(_subset(data, kept), units))
        return report

    def remove_source(self, name: str) -> int:
        data = self.data
        keep = [i for i, u in enumerate(data.units) if not (u.kind == "doc" and u.source == name)]
        removed = len(data.units) - len(keep)
        if not removed:
            raise CoachError(f"No document named {name!r} is in the index; `coach sources` lists them.")
        self._commit(_subset(data, keep))
        return removed

    def sources(self) -> dict[str, dict]:
        return self.data.sources()

    def search(self, query: str, k: int = 5, mode: str = "hybrid", kind: str | None = None) -> list[Hit]:
        return self.retriever.search(query, k=k, mode=mode, kind=kind)

    def set_relevance_model(self, model) -> None:
        """Use ``model`` instead of the shipped relevance weights (benchmarks and fitting)."""
        self._relevance_model = model
        self._retriever = None

    def lookup(self, query: str, per_kind: int = 8) -> Lookup:
        """Bank items and document chunks for ``query``, apart, each with its calibrated relevance."""
        return self.retriever.lookup(query, per_kind)

    # ---- internals -----------------------------------------------------
    def _chunk_files(self, paths, existing: dict[str, str]) -> tuple[IngestReport, list[Unit]]:
        from .ingest import load_chunks

        report, units = IngestReport(), []
        for n, path in enumerate(paths, 1):
            path = Path(path)
            self.progress("reading documents", n - 1, len(paths))
            try:
                digest = _file_hash(path)
                if existing.get(path.name) == digest:
                    report.unchanged.append(path.name)
                    continue
                chunks = load_chunks(path)
            except IngestError as exc:
                report.errors[path.name] = str(exc)
                continue
            units += [doc_unit(c, digest) for c in chunks]
            report.added[path.name] = len(chunks)
        self.progress("reading documents", len(paths), len(paths))
        return report, units

    def _rebuild(self, docs: list[Unit]) -> IndexData:
        units = [bank_unit(item) for item in self.bank.items.values()]
        return self._extend(self._empty(), units + docs)

    def _replace_bank(self, data: IndexData) -> IndexData:
        docs = [i for i, u in enumerate(data.units) if u.kind == "doc"]
        fresh = _subset(data, docs)
        fresh.bank_digest = self.bank.digest
        return self._extend(fresh, [bank_unit(item) for item in self.bank.items.values()])

    def _empty(self) -> IndexData:
        dim = self.embedder.dim
        return IndexData([], np.zeros((0, dim), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int8),
                         self.embedder.id, dim, self.bank.digest, self.bank.glossary_digest)

    def _extend(self, data: IndexData, units: list[Unit]) -> IndexData:
        """``data`` plus ``units``, embedding only the new units (identical texts once)."""
        texts, owners, fields = [], [], []
        for offset, unit in enumerate(units, len(data.units)):
            for q in dict.fromkeys(unit.qtexts):
                texts.append(q); owners.append(offset); fields.append(0)
            texts.append(unit.text); owners.append(offset); fields.append(1)
        unique = list(dict.fromkeys(texts))
        report = lambda done, total: self.progress("embedding", done, total)  # noqa: E731
        vectors = self.embedder.embed_passages(unique, progress=report) if unique else np.zeros((0, data.dim), np.float32)
        row = {t: i for i, t in enumerate(unique)}
        new = vectors[[row[t] for t in texts]] if texts else vectors
        return IndexData(
            units=data.units + units, vectors=np.vstack([data.vectors, new]).astype(np.float32),
            vec_unit=np.concatenate([data.vec_unit, np.array(owners, np.int64)]),
            vec_field=np.concatenate([data.vec_field, np.array(fields, np.int8)]),
            embedder=data.embedder, dim=data.dim, bank_digest=data.bank_digest, glossary_digest=data.glossary_digest,
        )

    def _save(self, data: IndexData) -> IndexData:
        self.progress("saving index", 0, 1)
        store.save(data, self.settings.index_dir)
        self.progress("saving index", 1, 1)
        return data

    def _commit(self, data: IndexData) -> None:
        self._data = self._save(data)
        self._retriever = None


def _subset(data: IndexData, keep: list[int]) -> IndexData:
    """The units at positions ``keep`` with their vectors, renumbered."""
    new_pos = {old: new for new, old in enumerate(keep)}
    rows = [r for r, u in enumerate(data.vec_unit) if int(u) in new_pos]
    return IndexData(
        units=[data.units[i] for i in keep], vectors=data.vectors[rows],
        vec_unit=np.array([new_pos[int(data.vec_unit[r])] for r in rows], np.int64),
        vec_field=data.vec_field[rows], embedder=data.embedder, dim=data.dim,
        bank_digest=data.bank_digest, glossary_digest=data.glossary_digest,
    )


def _file_hash(path: Path) -> str:
    from .ingest import MAX_FILE_BYTES

    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise IngestError(f"{path.name} is larger than {MAX_FILE_BYTES // 2**20} MB; split it into smaller files.")
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        raise IngestError(f"Cannot read {path.name}; check that the file exists and is readable.") from None
