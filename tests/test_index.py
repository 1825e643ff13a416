"""The persisted index: no pickle, verified on load, atomic, rebuilt when stale."""

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from dataclasses import replace

import pytest

from coach import index as store
from coach.errors import IndexStoreError
from coach.knowledge import KnowledgeBase


def test_first_use_builds_a_bank_index_with_a_manifest(small_kb, small_settings):
    assert small_kb.data.manifest()["counts"]["bank_units"] == 5
    manifest, segments = store.read_manifest(small_settings.index_dir)
    assert manifest["format"] == "coach-index" and manifest["version"] == store.VERSION
    assert manifest["embedder"] == "use-multilingual-v3" and manifest["dim"] == 512
    [segment] = [s for s in segments if s["units"]]
    assert set(segment["files"]) == {"vectors.faiss", "units.sqlite"} and segment["units"] == 5
    folder = small_settings.index_dir / segment["name"]
    assert sorted(p.name for p in folder.iterdir()) == ["units.sqlite", "vectors.faiss"]


def test_nothing_on_disk_is_a_pickle(small_kb, small_settings):
    small_kb.data
    for path in small_settings.index_dir.rglob("*"):
        if path.is_file():
            assert not path.read_bytes().startswith(b"\x80"), f"{path.name} looks like a pickle"


def test_a_reload_uses_the_saved_index_without_re_embedding(small_kb, small_settings, monkeypatch):
    small_kb.data
    fresh = KnowledgeBase(small_settings)
    monkeypatch.setattr(fresh.embedder, "embed_passages", lambda *a, **k: pytest.fail("re-embedded"))
    assert len(fresh.data.units) == 5


def _segment(index_dir):
    manifest, segments = store.read_manifest(index_dir)
    return index_dir / f"{manifest['generation_name']}.json", manifest, [s for s in segments if s["units"]][0]


@pytest.mark.parametrize("damage", ["truncate-vectors", "edit-units", "drop-manifest", "future-version",
                                    "no-hashes", "no-segment-hashes", "edit-dim", "vector-without-unit"])
def test_a_damaged_index_is_reported_in_one_sentence(small_kb, small_settings, damage):
    small_kb.data
    path, manifest, segment = _segment(small_settings.index_dir)
    folder = small_settings.index_dir / segment["name"]
    if damage == "truncate-vectors":
        vectors = folder / "vectors.faiss"
        vectors.write_bytes(vectors.read_bytes()[:100])
    elif damage == "edit-units":
        with open(folder / "units.sqlite", "ab") as fh:
            fh.write(b"junk")
    elif damage == "drop-manifest":
        path.unlink()
    elif damage == "future-version":
        manifest["version"] = 99
    elif damage == "no-hashes":  # switching the check off by deleting the hashes is refused
        for s in manifest["segments"]:
            del s["files"]
    elif damage == "no-segment-hashes":
        manifest["segments"][0]["files"] = {}
    elif damage == "edit-dim":
        manifest["dim"] = 384
    else:  # a vector row pointing past the units, with the hashes updated to match
        con = sqlite3.connect(folder / "units.sqlite")
        con.execute("UPDATE vectors SET unit = 999 WHERE row = 0")
        con.commit()
        con.close()
        for s in manifest["segments"]:
            if s["name"] == segment["name"]:
                s["files"]["units.sqlite"] = hashlib.sha256((folder / "units.sqlite").read_bytes()).hexdigest()
    if damage not in ("truncate-vectors", "edit-units", "drop-manifest"):
        manifest.pop("generation_name")
        path.write_text(json.dumps(manifest))
    with pytest.raises(IndexStoreError) as err:
        store.load(small_settings.index_dir)
    message = str(err.value)
    assert "coach index build" in message and message.count(". ") == 0


def test_a_crash_while_writing_leaves_the_previous_index_loadable(small_kb, small_settings, monkeypatch):
    before = small_kb.data
    def crash(data, u0, nu, v0, nv, folder):
        (folder / "vectors.faiss").write_bytes(b"half written")
        raise OSError("disk full")
    monkeypatch.setattr(store, "_write_segment", crash)
    extra = store.append(before, before.units[:1], before.vectors[:1], [0], [1])
    with pytest.raises(OSError):
        store.save(extra, small_settings.index_dir)
    loaded = store.load(small_settings.index_dir)
    assert len(loaded.units) == len(before.units) and loaded.generation == before.generation
    assert not [p for p in small_settings.index_dir.iterdir() if p.name.startswith(".seg-")]


def test_adding_a_document_writes_only_its_own_segment(small_kb, small_settings, tmp_path):
    small_kb.data
    _, _, bank = _segment(small_settings.index_dir)
    bank_files = {p.name: p.stat().st_mtime_ns for p in (small_settings.index_dir / bank["name"]).iterdir()}
    doc = tmp_path / "notes.md"
    doc.write_text("# 什么是张量?\n张量就是多维数组,标量、向量和矩阵都是它的特例。\n", encoding="utf-8")
    small_kb.ingest([doc])
    manifest, segments = store.read_manifest(small_settings.index_dir)
    assert [s["name"] for s in segments][0] == bank["name"]  # the bank's segment is reused, not rewritten
    assert {p.name: p.stat().st_mtime_ns for p in (small_settings.index_dir / bank["name"]).iterdir()} == bank_files
    assert segments[-1]["units"] == small_kb.sources()["notes.md"]["chunks"]
    small_kb.remove_source("notes.md")
    assert [s["name"] for s in store.read_manifest(small_settings.index_dir)[1]] == [bank["name"]]


def test_a_running_knowledge_base_sees_documents_another_writer_added(small_kb, small_settings, tmp_path):
    small_kb.data
    other = KnowledgeBase(small_settings)
    doc = tmp_path / "cli-doc.md"
    doc.write_text("# 什么是张量?\n张量就是多维数组,标量、向量和矩阵都是它的特例。\n", encoding="utf-8")
    other.ingest([doc])
    assert "cli-doc.md" in small_kb.sources()  # no restart: the new generation is picked up
    hits = small_kb.search("张量是什么", k=3)
    assert any(h.source == "cli-doc.md" for h in hits)


WRITER = """
import sys
from pathlib import Path
from coach.config import Settings
from coach.knowledge import KnowledgeBase
settings = Settings.from_env(corpus_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]))
kb = KnowledgeBase(settings)
kb.data
Path(sys.argv[3] + ".ready").touch()
while not Path(sys.argv[4]).exists():
    pass
report = kb.ingest([Path(p) for p in sys.argv[3].split(",")])
assert not report.errors, report.errors
"""


def test_two_writer_processes_lose_no_document(small_kb, small_settings, tmp_path):
    """Two real processes ingest at the same moment; both documents stay, on disk and in a third reader."""
    small_kb.data
    names = []
    for n in range(2):
        doc = tmp_path / f"doc{n}.md"
        doc.write_text(f"# 问题{n}: 第{n}份笔记讲什么?\n" + f"第{n}份笔记的内容,关于卷积和池化的区别。" * 20, encoding="utf-8")
        names.append(doc)
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(small_settings.corpus_dir), str(small_settings.index_dir),
                               str(doc), str(go)]) for doc in names]
    deadline = time.monotonic() + 120
    while not all(Path(str(d) + ".ready").exists() for d in names) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert set(KnowledgeBase(small_settings).sources()) == {"doc0.md", "doc1.md"}
    assert set(small_kb.sources()) == {"doc0.md", "doc1.md"}


def test_an_index_of_version_2_is_still_read_and_upgraded_on_the_next_write(small_kb, small_settings, tmp_path):
    data = small_kb.data
    legacy = tmp_path / "legacy"
    folder = legacy / "gen-000003"
    folder.mkdir(parents=True)
    files = store._write_segment(data, 0, len(data.units), 0, len(data.vectors), folder)
    manifest = data.manifest()
    manifest.update(version=2, files=files)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (legacy / "CURRENT").write_text("gen-000003\n")
    kb = KnowledgeBase(replace(small_settings, index_dir=legacy))
    assert len(kb.data.units) == 5
    doc = tmp_path / "n.md"
    doc.write_text("# 什么是张量?\n张量就是多维数组。\n", encoding="utf-8")
    kb.ingest([doc])
    manifest, segments = store.read_manifest(legacy)
    assert manifest["version"] == 3 and segments[0]["name"] == "gen-000003" and "n.md" in kb.sources()


def test_a_changed_bank_rebuilds_only_the_bank(small_settings, tmp_path):
    corpus = tmp_path / "corpus"
    os.system(f"cp -r {small_settings.corpus_dir} {corpus}")
    settings = replace(small_settings, corpus_dir=corpus)
    kb = KnowledgeBase(settings)
    kb.data
    path = corpus / "bank" / "activation.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("为什么现在多用ReLU", "为何如今多用ReLU"), encoding="utf-8")
    fresh = KnowledgeBase(settings)
    titles = [u.title for u in fresh.data.units]
    assert any(t.startswith("为何如今多用ReLU") for t in titles)
    assert store.load(settings.index_dir).bank_digest == fresh.bank.digest


def test_a_different_embedder_triggers_a_full_rebuild(small_kb, small_settings):
    small_kb.data
    other = KnowledgeBase(replace(small_settings, embedder="minilm"))
    assert other.data.embedder == "all-minilm-l6-v2" and other.data.dim == 384
    assert store.load(small_settings.index_dir).embedder == "all-minilm-l6-v2"


def test_with_background_refresh_a_request_never_waits_for_a_new_generation(small_kb, small_settings, tmp_path):
    small_kb.data
    small_kb.retriever
    small_kb.refresh_in_background = True
    before = small_kb.retriever
    doc = tmp_path / "late.md"
    doc.write_text("# 什么是张量?\n张量就是多维数组,标量、向量和矩阵都是它的特例。\n", encoding="utf-8")
    KnowledgeBase(small_settings).ingest([doc])
    # a slow retriever build (the real bank's takes about a second) is held until the requests are served
    built, release = threading.Event(), threading.Event()
    make = small_kb._make_retriever

    def slow_make(data):
        built.set()
        release.wait(30)
        return make(data)

    small_kb._make_retriever = slow_make
    for _ in range(3):  # served from the generation it had, while a thread loads the new one
        assert small_kb.retriever is before and "late.md" not in small_kb.sources()
    assert built.wait(30)
    release.set()
    deadline = time.monotonic() + 60
    while "late.md" not in small_kb.sources() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "late.md" in small_kb.sources() and small_kb.retriever is not before
    assert any(h.source == "late.md" for h in small_kb.search("张量是什么", k=3))


def test_units_keep_their_analysed_text_so_a_reload_does_not_tokenise_again(small_kb, small_settings, monkeypatch):
    small_kb.data
    fresh = KnowledgeBase(small_settings)
    assert all(u.terms and u.terms["b"] for u in fresh.data.units)
    import coach.retrieve

    monkeypatch.setattr(coach.retrieve, "analyse", lambda *a: pytest.fail("analysed again on load"))
    assert fresh.search("ReLU为什么比sigmoid好", k=1)[0].kind == "bank"


def test_an_index_saved_without_analysed_text_is_upgraded_once_without_re_embedding(small_kb, small_settings,
                                                                                   monkeypatch):
    data = small_kb.data
    bare = replace(data, units=[replace(u, terms=None) for u in data.units], segments=[])
    store.write_generation(bare, small_settings.index_dir)
    assert all(u.terms is None for u in store.load(small_settings.index_dir).units)
    fresh = KnowledgeBase(small_settings)
    monkeypatch.setattr(fresh.embedder, "embed_passages", lambda *a, **k: pytest.fail("re-embedded"))
    upgraded = fresh.data
    assert all(u.terms for u in upgraded.units)
    assert (upgraded.vectors == data.vectors).all()
    assert all(u.terms for u in store.load(small_settings.index_dir).units)


def test_the_default_embedder_needs_neither_torch_nor_sentence_transformers(small_settings):
    code = ("import sys\nfrom coach.config import Settings\nfrom coach.knowledge import KnowledgeBase\n"
            f"kb = KnowledgeBase(Settings.from_env(corpus_dir={str(small_settings.corpus_dir)!r}, "
            f"index_dir={str(small_settings.index_dir)!r}))\n"
            "hit = kb.search('ReLU为什么比sigmoid好', k=1)[0]\n"
            "print(hit.kind, sorted(m for m in ('torch', 'sentence_transformers') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["bank", "[]"]


def test_the_live_generation_is_seen_again_after_a_writer_replaces_current(tmp_path):
    # current() caches CURRENT by its stat signature; a writer's os.replace must still be seen at once
    (tmp_path / "CURRENT").write_text("gen-000001\n", encoding="utf-8")
    assert store.current(tmp_path) == "gen-000001"
    tmp = tmp_path / "CURRENT.tmp"
    tmp.write_text("gen-000002\n", encoding="utf-8")
    os.replace(tmp, tmp_path / "CURRENT")
    assert store.current(tmp_path) == "gen-000002"
    (tmp_path / "CURRENT").unlink()
    assert store.current(tmp_path) is None


def test_a_loaded_index_needs_no_text_analysis_of_its_units(small_kb, small_settings, monkeypatch):
    # the body terms are saved with each unit, so a fresh process runs jieba on no unit, not lazily per query
    from coach import relevance
    from coach.retrieve import analyse

    small_kb.data  # noqa: B018 - builds the index
    calls = []
    real = relevance.content_terms
    monkeypatch.setattr(relevance, "content_terms", lambda text, glossary: calls.append(text) or real(text, glossary))
    fresh = KnowledgeBase(small_settings)
    for hit in fresh.lookup("BN层为什么要加γ和β?").bank:
        assert hit.features
    unit_texts = {u.text for u in fresh.data.units}
    assert not [t for t in calls if t in unit_texts]
    assert all(u.terms["bt"] == analyse(u, fresh.bank.glossary)["bt"] for u in fresh.data.units[:5])
