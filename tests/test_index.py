"""The persisted index: no pickle, verified on load, atomic, rebuilt when stale."""

import json
import os
from dataclasses import replace

import pytest

from coach import index as store
from coach.errors import IndexStoreError
from coach.knowledge import KnowledgeBase


def test_first_use_builds_a_bank_index_with_a_manifest(small_kb, small_settings):
    assert small_kb.data.manifest()["counts"]["bank_units"] == 5
    manifest, folder = store.read_manifest(small_settings.index_dir)
    assert manifest["format"] == "coach-index" and manifest["version"] == store.VERSION
    assert manifest["embedder"] == "use-multilingual-v3" and manifest["dim"] == 512
    assert set(manifest["files"]) == {"vectors.faiss", "units.sqlite"}
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "units.sqlite", "vectors.faiss"]


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


@pytest.mark.parametrize("damage", ["truncate-vectors", "edit-units", "drop-manifest", "future-version"])
def test_a_damaged_index_is_reported_in_one_sentence(small_kb, small_settings, damage):
    small_kb.data
    manifest, folder = store.read_manifest(small_settings.index_dir)
    if damage == "truncate-vectors":
        path = folder / "vectors.faiss"
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "edit-units":
        with open(folder / "units.sqlite", "ab") as fh:
            fh.write(b"junk")
    elif damage == "drop-manifest":
        (folder / "manifest.json").unlink()
    else:
        manifest["version"] = 99
        (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexStoreError) as err:
        store.load(small_settings.index_dir)
    message = str(err.value)
    assert "coach index build" in message and message.count(". ") == 0


def test_a_crash_while_writing_leaves_the_previous_index_loadable(small_kb, small_settings, monkeypatch):
    before = small_kb.data
    def crash(data, folder):
        (folder / "vectors.faiss").write_bytes(b"half written")
        raise OSError("disk full")
    monkeypatch.setattr(store, "_write_generation", crash)
    with pytest.raises(OSError):
        store.save(before, small_settings.index_dir)
    loaded = store.load(small_settings.index_dir)
    assert len(loaded.units) == len(before.units)
    assert not [p for p in small_settings.index_dir.iterdir() if p.name.startswith(".gen-")]


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
