"""What ingest may read and what a document may cost: real files, FIFOs, links, and small bombs made here."""

from __future__ import annotations

import io
import os
import time
import zipfile
import zlib
from dataclasses import replace

import pytest

from coach import ingest
from coach.errors import IngestError
from coach.ingest import collect, load_chunks
from coach.knowledge import KnowledgeBase

NOTE = "# 什么是张量?\n张量就是多维数组,标量、向量和矩阵都是它的特例。\n"


def test_a_folder_is_walked_for_supported_files_named_by_their_relative_path(tmp_path, monkeypatch):
    (tmp_path / "notes" / "a").mkdir(parents=True)
    (tmp_path / "notes" / "b").mkdir()
    (tmp_path / "notes" / "a" / "notes.md").write_text(NOTE, encoding="utf-8")
    (tmp_path / "notes" / "b" / "notes.md").write_text(NOTE.replace("张量", "向量"), encoding="utf-8")
    (tmp_path / "notes" / "b" / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "notes" / ".hidden.md").write_text(NOTE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    found, skipped = collect(["notes"])
    assert [f.name for f in found] == ["notes/a/notes.md", "notes/b/notes.md"] and not skipped
    found, _ = collect([tmp_path / "notes"])  # an absolute folder: its own name, then the path inside
    assert [f.name for f in found] == ["notes/a/notes.md", "notes/b/notes.md"]


def test_same_name_files_in_two_folders_stay_two_documents(small_settings, tmp_path, monkeypatch):
    for folder, word in (("a", "张量"), ("b", "向量")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "notes.md").write_text(NOTE.replace("张量", word), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    kb = KnowledgeBase(small_settings)
    kb.ingest(["a/notes.md"])
    report = kb.ingest(["b/notes.md"])
    assert report.added == {"b/notes.md": 1}
    assert set(kb.sources()) == {"a/notes.md", "b/notes.md"}
    kb.ingest(["b/notes.md"])  # re-ingesting b leaves a alone
    assert set(kb.sources()) == {"a/notes.md", "b/notes.md"}


def test_replacing_a_document_is_explicit(small_settings, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    doc = tmp_path / "notes.md"
    doc.write_text(NOTE, encoding="utf-8")
    kb = KnowledgeBase(small_settings)
    kb.ingest(["notes.md"])
    doc.write_text(NOTE.replace("张量", "向量"), encoding="utf-8")
    refused = kb.ingest(["notes.md"])
    assert not refused.added and "already indexed" in refused.errors["notes.md"]
    assert "张量" in kb.data.units[-1].title
    replaced = kb.ingest(["notes.md"], replace=True)
    assert replaced.replaced == ["notes.md"] and kb.sources()["notes.md"]["chunks"] == 1
    assert "向量" in [u for u in kb.data.units if u.kind == "doc"][0].title


def test_a_fifo_and_a_link_to_a_device_are_skipped_without_reading_them(small_settings, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    os.mkfifo(folder / "pipe.txt")
    os.symlink("/dev/zero", folder / "zero.txt")
    (folder / "ok.md").write_text(NOTE, encoding="utf-8")
    started = time.monotonic()
    report = KnowledgeBase(small_settings).ingest([folder])
    assert time.monotonic() - started < 60  # nothing hangs on the FIFO or reads the device
    assert report.added == {"docs/ok.md": 1}
    problems = " ".join(report.errors.values())
    assert "pipe.txt" in problems and "zero.txt" in problems and "skipped" in problems


def test_a_link_leading_outside_the_folder_is_not_indexed(small_settings, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    os.symlink("/etc/passwd", folder / "passwd.txt")
    (folder / "ok.md").write_text(NOTE, encoding="utf-8")
    kb = KnowledgeBase(small_settings)
    report = kb.ingest([folder])
    assert any("link leading outside" in e for e in report.errors.values())
    assert not any("root:" in u.text for u in kb.data.units)
    direct = kb.ingest([folder / "passwd.txt"])  # named directly it still leads outside its folder
    assert not direct.added and any("link leading outside" in e for e in direct.errors.values())


def _docx_with_paragraphs(n: int) -> bytes:
    body = "<w:p/>" * n
    document = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
                f'<w:body>{body}</w:body></w:document>')
    types = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
             '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
             '<Default Extension="xml" ContentType="application/xml"/>'
             '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
    rels = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", types)
        z.writestr("_rels/.rels", rels)
        z.writestr("word/document.xml", document)
    return out.getvalue()


def test_a_tiny_docx_of_a_million_empty_paragraphs_is_refused_quickly(tmp_path):
    path = tmp_path / "empty.docx"
    path.write_bytes(_docx_with_paragraphs(1_000_000))
    assert path.stat().st_size < 20_000
    started = time.monotonic()
    with pytest.raises(IngestError, match="paragraphs"):
        load_chunks(path)
    assert time.monotonic() - started < 10


def test_a_small_pdf_with_a_huge_compressed_stream_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "MAX_UNPACKED_BYTES", 5 * 2**20)
    content = zlib.compress(b"BT /F1 11 Tf 72 740 Td (x) Tj ET\n" * 400_000, 9)  # ~13 MB unpacked
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path = tmp_path / "bomb.pdf"
    path.write_bytes(bytes(out))
    assert path.stat().st_size < 200_000
    with pytest.raises(IngestError, match="unpacks to more than 5 MB"):
        load_chunks(path)


def test_a_pdf_over_the_page_limit_is_refused_before_its_text_is_read(tmp_path, monkeypatch):
    from tests.test_ingest import write_text_pdf

    monkeypatch.setattr(ingest, "MAX_PDF_PAGES", 0)
    write_text_pdf(tmp_path / "long.pdf", ["Q: What is overfitting?", "A: Memorising noise."])
    with pytest.raises(IngestError, match="over the 0-page limit"):
        load_chunks(tmp_path / "long.pdf")


def test_reading_that_takes_too_long_is_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "MAX_SECONDS", 0.2)
    from coach.ingest import readers

    def slow(data, name):
        time.sleep(5)
        return "never"
    monkeypatch.setitem(readers.__dict__, "read_plain", slow)
    (tmp_path / "slow.txt").write_text("什么是张量?\n多维数组。", encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(IngestError, match="took over 0.2 seconds"):
        load_chunks(tmp_path / "slow.txt")
    assert time.monotonic() - started < 3


def test_too_many_chunks_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "MAX_CHUNKS", 3)
    text = "\n\n".join(f"# 问题{n}: 第{n}题讲什么?\n第{n}题的答案。" for n in range(10))
    (tmp_path / "many.md").write_text(text, encoding="utf-8")
    with pytest.raises(IngestError, match="over 3 chunks"):
        load_chunks(tmp_path / "many.md")


def test_a_failed_ingest_leaves_the_index_as_it_was(small_settings, tmp_path):
    kb = KnowledgeBase(small_settings)
    before = kb.data.generation
    (tmp_path / "empty.docx").write_bytes(_docx_with_paragraphs(1_000_000))
    report = kb.ingest([tmp_path / "empty.docx"])
    assert report.errors and not report.added
    assert kb.data.generation == before
