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

A user's own documents (when the app has accounts) are a small documents-only
index beside the shared one: ``KnowledgeBase(user_settings, shared=kb)`` uses the
shared bank, embedder and glossary, and its lookups return the shared index's
bank items with both indexes' document chunks, ranked together by relevance.
"""

from __future__ import annotations

import hashlib
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np

from . import index as store
from . import relevance as rel
from .bank import Bank, BankItem
from .config import Settings
from .errors import CoachError, IngestError
from .index import IndexData, Unit
from .retrieve import Hit, Lookup, Retriever
from .ingest import display
from .text import meaningful_length

# progress(stage, done, total): every long step reports through it
Progress = Callable[[str, int, int], None]


def _quiet(stage: str, done: int, total: int) -> None:
    pass


@dataclass
class IngestReport:
    added: dict[str, int] = field(default_factory=dict)  # source -> chunks
    unchanged: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # document name -> one sentence
    replaced: list[str] = field(default_factory=list)  # names whose old content was replaced


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


def _unanalysed(data: IndexData) -> bool:
    from .retrieve import TERMS_VERSION

    return any(not u.terms or u.terms.get("v") != TERMS_VERSION for u in data.units)


class KnowledgeBase:
    def __init__(self, settings: Settings | None = None, progress: Progress | None = None,
                 shared: "KnowledgeBase | None" = None):
        self.settings = settings or Settings.from_env()
        self.shared = shared  # set: this index holds one user's documents only, beside ``shared``
        if shared is not None:  # one bank, one model in memory, however many users
            self.bank, self.embedder, self.reranker = shared.bank, shared.embedder, shared.reranker
        self.progress = progress or _quiet
        self._data: IndexData | None = None
        self._retriever: Retriever | None = None
        self._catalog: tuple[IndexData, Bank] | None = None
        self._relevance_model = None  # None: the shipped weights (see set_relevance_model)
        self._segments: dict = {}  # verified segments by name, so a new generation reads only what is new
        self._loading = threading.RLock()
        self.refresh_in_background = False  # the web app sets it: requests never wait for a reload
        self._flag = threading.Lock()
        self._refreshing = False

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
        """The current generation. When another writer (a CLI ingest, the upload worker) has made
        a newer one, it is loaded first, reading only its new segments; with
        ``refresh_in_background`` set (the web app) the caller keeps the generation it has while a
        thread loads the new one and its retriever, so no request waits for a reload."""
        data = self._data
        if data is not None and store.current(self.settings.index_dir) == data.generation:
            return data
        if self.shared is not None and not store.exists(self.settings.index_dir):
            # a user with no documents yet: nothing is written until they add one
            if data is None or data.units:
                data = self._data = self._empty()
            return data
        if data is not None and self.refresh_in_background:
            self._refresh_soon()
            return data
        self.refresh()
        return self._data

    def refresh(self) -> None:
        """Load the newest generation (if it changed) and build its retriever, then swap both in."""
        with self._loading:
            data = self._data
            if data is None or store.current(self.settings.index_dir) != data.generation:
                data = self._load_fresh()
            retriever = self._retriever
            if self.refresh_in_background and (retriever is None or retriever.data is not data):
                retriever = self._make_retriever(data)
            self._data, self._retriever = data, retriever

    def _refresh_soon(self) -> None:
        with self._flag:
            if self._refreshing:
                return
            self._refreshing = True

        def run():
            try:
                self.refresh()
            finally:
                with self._flag:
                    self._refreshing = False
        threading.Thread(target=run, name="index-refresh", daemon=True).start()

    @property
    def catalog(self) -> Bank:
        """The bank plus the Q&A pairs of the user's documents as items (see ``documents.py``);
        beside a shared index, the shared catalog plus this user's documents."""
        data = self.data
        base = self.shared.catalog if self.shared is not None else self.bank
        catalog = self._catalog
        if catalog is None or catalog[0] is not data or catalog[1] is not base:
            from .documents import catalog as make

            catalog = self._catalog = (data, base, make(base, data))
        return catalog[2]

    @property
    def retriever(self) -> Retriever:
        """This index's retriever (a user's with no documents yet: the shared one)."""
        data = self.data
        if self.shared is not None and not data.units:
            return self.shared.retriever
        retriever = self._retriever
        if retriever is not None and self.refresh_in_background and retriever.data is self._data:
            return retriever  # a background refresh swapped in a newer pair meanwhile: use it, build nothing
        if retriever is None or retriever.data is not data:
            retriever = self._retriever = self._make_retriever(data)
        return retriever

    def bank_question_vectors(self, ids: list[str]) -> np.ndarray:
        """Each bank item's question (its first phrasing) embedded as a query.

        Beside a shared index, the shared one holds the bank.

        The grader compares an answer with every bank question; embedding them all again took
        over a second of each ``coach grade``. When queries and passages are embedded alike (no
        prefixes, as with the default), the index already holds these vectors.
        """
        if self.shared is not None:
            return self.shared.bank_question_vectors(ids)
        embedder, data = self.embedder, self.data
        rows: dict[str, int] = {}
        if embedder.query_prefix == embedder.passage_prefix:
            questions = np.flatnonzero(data.vec_field == 0)  # vectors of a unit are stored in phrasing order
            units, first = np.unique(data.vec_unit[questions], return_index=True)
            rows = {data.units[u].item_id: int(questions[f]) for u, f in zip(units, first)
                    if data.units[u].kind == "bank"}
        out = np.zeros((len(ids), embedder.dim), np.float32)
        todo = [i for i, item_id in enumerate(ids) if item_id not in rows]
        for i, item_id in enumerate(ids):
            if item_id in rows:
                out[i] = data.vectors[rows[item_id]]
        if todo:
            out[todo] = embedder.embed_queries([self.bank.items[ids[i]].question for i in todo])
        return out

    def _make_retriever(self, data: IndexData) -> Retriever:
        base = self.shared.retriever if self.shared is not None else None
        model = self._relevance_model if self.shared is None else self.shared._relevance_model
        return Retriever(data, self.embedder, self.bank.glossary, self.reranker, model=model, base=base)

    def _load_fresh(self) -> IndexData:
        index_dir = self.settings.index_dir
        if store.exists(index_dir):
            data = store.load(index_dir, self._segments)
            if not self._stale(data):
                return data
        with store.write_lock(index_dir):  # building or repairing writes: re-read under the lock
            return self._latest()

    def _stale(self, data: IndexData) -> bool:
        return (data.embedder != self.embedder.id or data.glossary_digest != self.bank.glossary_digest
                or data.bank_digest != self._bank_digest() or _unanalysed(data))

    def _bank_digest(self) -> str:
        return "" if self.shared is not None else self.bank.digest  # a user's index holds no bank

    def _latest(self) -> IndexData:
        """The current generation, brought up to date with the bank and embedder; the write lock is held."""
        index_dir = self.settings.index_dir
        if not store.exists(index_dir):
            return self._write(self._rebuild(docs=[]))
        data = store.load(index_dir, self._segments)
        if data.embedder != self.embedder.id or data.glossary_digest != self.bank.glossary_digest:
            return self._write(self._rebuild(docs=[u for u in data.units if u.kind == "doc"]))
        if data.bank_digest != self._bank_digest():
            return self._write(self._replace_bank(data))
        if _unanalysed(data):  # written before units kept their analysed text: save it, vectors unchanged
            from .retrieve import analyse

            units = [replace(u, terms=analyse(u, self.bank.glossary)) for u in data.units]
            return self._write(replace(data, units=units, segments=[]))
        return data

    # ---- building ------------------------------------------------------
    def build(self, doc_paths: list[Path] = ()) -> IngestReport:
        """A fresh index of the bank plus ``doc_paths`` (files or folders)."""
        from .ingest import collect

        found, skipped = collect(doc_paths)
        report, prepared = self._prepare(found, existing={})
        report.errors.update(skipped)
        fresh = self._rebuild(docs=[u for units, _ in prepared for u in units])
        with store.write_lock(self.settings.index_dir):
            self._commit(fresh)
        return report

    def ingest(self, paths: list[Path], replace: bool = False, names: dict | None = None) -> IngestReport:
        """Add documents (files, or folders walked for supported files).

        A document is known by its name (see ``ingest.collect``) and content hash: the same name
        with the same content is unchanged; the same name with other content is replaced only
        when ``replace`` is set; content already indexed under another name is not added twice.
        Reading and embedding happen outside the write lock; the lock is held from reading the
        current generation to making the new one current, so concurrent writers lose nothing.
        ``names`` maps a path to the name to store it under (the web app's uploads)."""
        from .ingest import Found, collect

        if names:
            found, skipped = [Found(Path(p), n) for p, n in names.items()], {}
        else:
            found, skipped = collect(paths)
        report, prepared = self._prepare(found, existing=self._hashes(self.data))
        report.errors.update(skipped)
        if not prepared:
            return report
        with self._locked() as data:
            hashes, by_hash = self._hashes(data), {v: k for k, v in self._hashes(data).items()}
            replaced, units, vectors, owners, fields = set(), [], [], [], []
            for doc_units, (vecs, own, flds) in prepared:
                name, digest = doc_units[0].source, doc_units[0].source_hash
                if hashes.get(name) == digest:
                    report.added.pop(name, None)
                    report.unchanged.append(name)
                    continue
                if name not in hashes and digest in by_hash:
                    report.added.pop(name, None)
                    report.errors[name] = f"{display(name)} has the same content as {display(by_hash[digest])}, already indexed; skipped."
                    continue
                if name in hashes and not replace:
                    report.added.pop(name, None)
                    report.errors[name] = (f"A different {display(name)} is already indexed; remove it first or "
                                           "replace it (`coach ingest --replace`, or tick 替换 in the app).")
                    continue
                if name in hashes:
                    replaced.add(name)
                    report.replaced.append(name)
                owners += [o + len(units) for o in own]
                units += doc_units
                vectors.append(vecs)
                fields += list(flds)
            if units:
                kept = [i for i, u in enumerate(data.units) if not (u.kind == "doc" and u.source in replaced)]
                base = store.subset(data, kept) if replaced else data
                self._commit(store.append(base, units, np.vstack(vectors), owners, fields))
        return report

    def remove_source(self, name: str) -> int:
        with self._locked() as data:
            keep = [i for i, u in enumerate(data.units) if not (u.kind == "doc" and u.source == name)]
            removed = len(data.units) - len(keep)
            if not removed:
                raise CoachError(f"No document named {display(name)!r} is in the index; `coach sources` lists them.")
            self._commit(store.subset(data, keep))
        return removed

    def sources(self) -> dict[str, dict]:
        """The documents in this index (beside a shared index: this user's own, the ones they may remove)."""
        return self.data.sources()

    def all_sources(self) -> dict[str, dict]:
        """Every document a query can reach: the shared ones and this user's."""
        return {**(self.shared.sources() if self.shared is not None else {}), **self.sources()}

    def search(self, query: str, k: int = 5, mode: str = "hybrid", kind: str | None = None) -> list[Hit]:
        if self.shared is None:
            return self.retriever.search(query, k=k, mode=mode, kind=kind)
        shared = self.shared.retriever
        qvecs = shared.query_vectors(query)
        hits = shared.search(query, k=k, mode=mode, kind=kind, qvecs=qvecs)
        if self.data.units and kind != "bank":
            hits += self.retriever.search(query, k=k, mode=mode, kind="doc", qvecs=qvecs)
            hits = sorted(hits, key=lambda h: (-h.score, -h.relevance))[:k]
            for rank, hit in enumerate(hits, 1):
                hit.rank = rank
        return hits

    def set_relevance_model(self, model) -> None:
        """Use ``model`` instead of the shipped relevance weights (benchmarks and fitting)."""
        self._relevance_model = model
        self._retriever = None

    def lookup(self, query: str, per_kind: int = 8) -> Lookup:
        """Bank items and document chunks for ``query``, apart, each with its calibrated relevance.

        Beside a shared index: the shared bank items, and both indexes' chunks ranked together."""
        if self.shared is None:
            return self.retriever.lookup(query, per_kind)
        shared = self.shared.retriever
        qvecs = shared.query_vectors(query)
        found = shared.lookup(query, per_kind, qvecs)
        if not self.data.units:
            return found
        own = self.retriever.lookup(query, per_kind, qvecs)
        merged = found.merged(own)
        return Lookup(query, merged.bank, merged.docs[:per_kind])

    def parts(self, question: str, answered: bool = False) -> list[Hit]:
        """For a question that asks several things, the hit that answers each, in order.

        "SPP,YOLO了解吗?" or "BN层的作用,为什么要加γ和β" asks two questions that no single
        item answers whole; each clause is looked up on its own, and a clause counts only when
        something clearly answers it (a clause such as "不加可以吗" answers nothing and is left
        out). When one item answers the whole question (``answered``), the clauses before the
        first that asks something (作用, 为什么, 吗 ...) are context: "Transformer里，为什么要除以
        根号dk" asks one thing. Chat answers each part; grading grades each part.
        """
        clauses = [c for c in rel.CLAUSES.split(question) if len(c.strip()) >= 2]
        if len(clauses) < 2:
            return []
        if answered:
            first = next((n for n, c in enumerate(clauses) if rel.ASKS.search(c)), len(clauses))
            clauses = clauses[first:]
        found: list[Hit] = []
        for clause in clauses[:rel.MAX_PARTS + 1]:
            answers = [h for h in self.lookup(clause, per_kind=3).answers
                       if (h.kind == "bank" or h.title) and h.relevance >= rel.PART]
            if answers and answers[0].group not in {h.group for h in found}:
                found.append(answers[0])
        return found[:rel.MAX_PARTS] if len(found) > 1 else []

    # ---- internals -----------------------------------------------------
    @contextmanager
    def _locked(self):
        """The current generation, up to date, with the write lock held until the block ends:
        what a change starts from; ``_commit`` inside the block makes the change."""
        with store.write_lock(self.settings.index_dir):
            yield self._latest()

    @staticmethod
    def _hashes(data: IndexData) -> dict[str, str]:
        return {name: info["sha256"] for name, info in data.sources().items()}

    def _prepare(self, found, existing: dict[str, str]) -> tuple[IngestReport, list]:
        """Read, chunk and embed each file not already indexed with the same content: a list of
        ``(units, (vectors, owners, fields))``, one entry per document."""
        from .ingest import chunks_from_bytes, read_document

        report, prepared = IngestReport(), []
        for n, item in enumerate(found, 1):
            self.progress("reading documents", n - 1, len(found))
            try:
                data = read_document(item.path)
                digest = hashlib.sha256(data).hexdigest()
                if existing.get(item.name) == digest:
                    report.unchanged.append(item.name)
                    continue
                chunks = chunks_from_bytes(data, item.name, suffix=item.path.suffix)
            except IngestError as exc:
                report.errors[item.name] = str(exc)
                continue
            units = [doc_unit(c, digest) for c in chunks]
            prepared.append((units, self._embed(units)))
            report.added[item.name] = len(chunks)
        self.progress("reading documents", len(found), len(found))
        return report, prepared

    def _rebuild(self, docs: list[Unit]) -> IndexData:
        bank = [bank_unit(item) for item in self.bank.items.values()] if self.shared is None else []
        return store.append(store.append(self._empty(), bank, *self._embed(bank)), docs, *self._embed(docs))

    def _replace_bank(self, data: IndexData) -> IndexData:
        docs = [i for i, u in enumerate(data.units) if u.kind == "doc"]
        fresh = store.subset(data, docs)
        fresh.bank_digest = self._bank_digest()
        bank = [bank_unit(item) for item in self.bank.items.values()] if self.shared is None else []
        return store.append(fresh, bank, *self._embed(bank))

    def _empty(self) -> IndexData:
        dim = self.embedder.dim
        return IndexData([], np.zeros((0, dim), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int8),
                         self.embedder.id, dim, self._bank_digest(), self.bank.glossary_digest)

    def _embed(self, units: list[Unit]) -> tuple[np.ndarray, list[int], list[int]]:
        """Vectors for ``units`` (identical texts embedded once): ``(vectors, owners, fields)`` where
        ``owners[i]`` is the position in ``units`` of vector i and ``fields[i]`` 0 question, 1 body."""
        from .retrieve import analyse

        texts, owners, fields = [], [], []
        for offset, unit in enumerate(units):
            unit.terms = analyse(unit, self.bank.glossary)  # saved with the unit; see Retriever
            for q in dict.fromkeys(unit.qtexts):
                texts.append(q); owners.append(offset); fields.append(0)
            texts.append(unit.text); owners.append(offset); fields.append(1)
        unique = list(dict.fromkeys(texts))
        report = lambda done, total: self.progress("embedding", done, total)  # noqa: E731
        dim = self.embedder.dim
        vectors = self.embedder.embed_passages(unique, progress=report) if unique else np.zeros((0, dim), np.float32)
        row = {t: i for i, t in enumerate(unique)}
        return (vectors[[row[t] for t in texts]] if texts else np.zeros((0, dim), np.float32)), owners, fields

    def _write(self, data: IndexData) -> IndexData:
        """Write ``data`` as the next generation; the caller holds the write lock."""
        self.progress("saving index", 0, 1)
        data = store.write_generation(data, self.settings.index_dir)
        self.progress("saving index", 1, 1)
        return data

    def _commit(self, data: IndexData) -> None:
        with self._loading:
            self._data = self._write(data)
            self._retriever = self._make_retriever(self._data) if self.refresh_in_background else None


def user_knowledge(settings: Settings, progress: Progress | None, shared: KnowledgeBase) -> KnowledgeBase:
    """A user's own documents beside ``shared``: files under their home, or rows in PostgreSQL
    when ``settings.database_url`` is set (then any replica serves them)."""
    if settings.database_url:
        from .userdocs import DatabaseDocuments

        return DatabaseDocuments(settings, progress, shared)
    return KnowledgeBase(settings, progress, shared)
