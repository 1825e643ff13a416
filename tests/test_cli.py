"""The `coach` command's contract, which other scripts rely on; real files, real index, real subprocesses."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from coach import index as store
from coach.cli import cli
from tests.conftest import FIXTURES, SMALL_CORPUS

DOCS = FIXTURES / "docs"


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("COACH_CORPUS", str(SMALL_CORPUS))
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)
    return invoke


def test_index_build_indexes_the_bank_and_the_documents(run, tmp_path):
    result = run("index", "build", "--index-dir", tmp_path / "ix", "--docs", DOCS / "bullet_qa.txt", "--docs", DOCS / "notes.md")
    assert result.exit_code == 0, result.output
    assert "added bullet_qa.txt" in result.output and "5 bank items" in result.output
    sources = store.load(tmp_path / "ix").sources()
    assert set(sources) == {"bullet_qa.txt", "notes.md"} and all(s["chunks"] > 0 for s in sources.values())


def test_search_json_prints_hits_with_the_documented_fields(run, tmp_path):
    run("ingest", "--index-dir", tmp_path / "ix", DOCS / "bullet_qa.txt")
    result = run("search", "BN层为什么要加γ和β", "-k", "3", "--json", "--index-dir", tmp_path / "ix")
    hits = json.loads(result.stdout)
    assert len(hits) == 3 and [h["rank"] for h in hits] == [1, 2, 3]
    assert all({"rank", "score", "relevance", "text", "source", "title", "item_id"} <= set(h) for h in hits)
    assert hits[0]["item_id"] == "norm-bn-gamma-beta" and hits[0]["source"] == "bank"
    assert hits[0]["relevance"] >= 0.5 and all(0 <= h["relevance"] <= 1 for h in hits)
    assert "features" not in hits[0]  # the signals stay internal


def test_search_batch_prints_one_json_array_per_query_in_order(run, tmp_path):
    queries = tmp_path / "queries.txt"
    queries.write_text("BN有啥用\n\nReLU和sigmoid\n", encoding="utf-8")
    result = run("search", "--batch", queries, "-k", "2", "--index-dir", tmp_path / "ix")
    lines = result.stdout.strip().splitlines()  # a first-time build reports on stderr, never stdout
    assert len(lines) == 3
    first, empty, third = (json.loads(line) for line in lines)
    assert first[0]["item_id"] == "norm-bn-purpose" and empty == [] and third[0]["item_id"] == "act-relu-vs-sigmoid"


def test_ingesting_a_document_makes_its_content_findable_without_re_embedding_the_bank(run, tmp_path, monkeypatch):
    ix = tmp_path / "ix"
    run("index", "build", "--index-dir", ix)
    before = store.load(ix)
    result = run("ingest", "--index-dir", ix, DOCS / "notes.md")
    assert result.exit_code == 0 and "added notes.md" in result.output
    after = store.load(ix)
    bank_rows = before.vec_unit < sum(u.kind == "bank" for u in before.units)
    assert (after.vectors[: bank_rows.sum()] == before.vectors[bank_rows]).all()
    again = run("ingest", "--index-dir", ix, DOCS / "notes.md")
    assert "unchanged notes.md" in again.output


@pytest.mark.parametrize("name, content, words", [
    ("virus.exe", b"MZ\x90\x00", "not a supported"),
    ("empty.txt", b"", "empty"),
    ("broken.pdf", b"%PDF-1.4 garbage", "PDF"),
], ids=["unsupported", "empty", "corrupt-pdf"])
def test_a_bad_file_gets_one_sentence_and_leaves_the_index_as_it_was(run, tmp_path, name, content, words):
    ix = tmp_path / "ix"
    run("index", "build", "--index-dir", ix)
    generation = (ix / "CURRENT").read_text()
    bad = tmp_path / name
    bad.write_bytes(content)
    result = CliRunner().invoke(cli, ["ingest", "--index-dir", str(ix), str(bad)])
    assert result.exit_code == 1
    assert words.lower() in result.output.lower() and "Traceback" not in result.output
    assert (ix / "CURRENT").read_text() == generation


def test_remove_and_sources(run, tmp_path):
    ix = tmp_path / "ix"
    run("ingest", "--index-dir", ix, DOCS / "notes.md", DOCS / "bullet_qa.txt")
    assert "notes.md" in run("sources", "--index-dir", ix).output
    assert "removed notes.md" in run("remove", "--index-dir", ix, "notes.md").output
    assert "notes.md" not in run("sources", "--index-dir", ix).output
    missing = CliRunner().invoke(cli, ["remove", "--index-dir", str(ix), "nope.md"])
    assert missing.exit_code == 1 and "coach sources" in missing.output


def test_grade_json_has_the_documented_fields(run, tmp_path):
    result = run("grade", "--question-id", "norm-bn-purpose", "--answer", "BN用批的均值和方差做标准化,可以用更大的学习率,加速收敛。",
                 "--json", "--index-dir", tmp_path / "ix")
    grade = json.loads(result.stdout)
    assert {"score", "verdict", "item_id", "covered", "missing", "misconceptions", "feedback", "model_answer",
            "sources"} <= set(grade)
    assert grade["item_id"] == "norm-bn-purpose" and 0 < grade["score"] <= 10


def test_grade_batch_answers_each_line_in_order_and_reports_bad_lines(run, tmp_path):
    batch = tmp_path / "answers.jsonl"
    batch.write_text("\n".join([
        json.dumps({"question_id": "norm-bn-purpose", "answer": "BN做标准化,加速收敛。"}, ensure_ascii=False),
        "not json",
        json.dumps({"question_id": "no-such-item", "answer": "x"}),
        json.dumps({"question": "为什么用ReLU不用sigmoid", "answer": "sigmoid会饱和导致梯度消失,ReLU正区间导数为1。"}, ensure_ascii=False),
    ]), encoding="utf-8")
    lines = [json.loads(x) for x in run("grade", "--batch", batch, "--index-dir", tmp_path / "ix").stdout.splitlines()]
    assert len(lines) == 4
    assert lines[0]["item_id"] == "norm-bn-purpose" and "error" in lines[1] and "coach bank list" in lines[2]["error"]
    assert lines[3]["item_id"] == "act-relu-vs-sigmoid"


def test_eval_commands_print_their_tables(run, tmp_path):
    rset = tmp_path / "r.jsonl"
    rset.write_text(json.dumps({"query": "BN有啥用", "gold": ["norm-bn-purpose"], "kind": "abbrev"}, ensure_ascii=False))
    out = run("eval", "retrieval", "--set", rset, "--index-dir", tmp_path / "ix").output
    assert "| hybrid | 1 | 1.000 |" in out
    gset = tmp_path / "g.jsonl"
    gset.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"item_id": "norm-bn-purpose", "answer": "BN用批的均值和方差标准化,能用更大学习率、加速收敛,还有轻微正则化效果。", "gold": 9, "kind": "excellent"},
        {"item_id": "norm-bn-purpose", "answer": "BN能加速收敛。", "gold": 3, "kind": "partial"},
        {"item_id": "norm-bn-purpose", "answer": "周末去爬山了。", "gold": 0, "kind": "off_topic"},
        {"item_id": "norm-bn-purpose", "answer": "", "gold": None, "kind": "empty"}]))
    out = run("eval", "grading", "--set", gset, "--index-dir", tmp_path / "ix").output
    assert "spearman" in out and "| 4 | 1 |" in out and "1/1" in out


def test_user_errors_end_in_one_line_without_a_traceback(tmp_path):
    env = {**os.environ, "COACH_CORPUS": str(SMALL_CORPUS), "COACH_INDEX_DIR": str(tmp_path / "ix")}
    for args in (["search"], ["grade", "--question-id", "x"], ["search", "问" * 600]):
        proc = subprocess.run([sys.executable, "-m", "coach.cli", *args], capture_output=True, text=True, env=env)
        assert proc.returncode == 1, args
        assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_batch_runs_grade_every_line_and_answer_bad_ones_with_an_error(run, tmp_path):
    batch = tmp_path / "answers.jsonl"
    good = json.dumps({"question_id": "norm-bn-purpose", "answer": "BN做标准化,加速收敛。"}, ensure_ascii=False).encode()
    batch.write_bytes(b"\n".join([
        good,
        json.dumps({"question_id": ["norm-bn-purpose"], "answer": "x"}).encode(),
        json.dumps({"question": 3.14, "answer": "x"}).encode(),
        b'{"question_id": "norm-bn-purpose", "answer": "\xff\xfe bad bytes"}',
        b"[" * 100_000 + b"]" * 100_000,
        json.dumps({"question_id": "norm-bn-purpose", "answer": None}).encode(),
        good,
    ]))
    result = run("grade", "--batch", batch, "--index-dir", tmp_path / "ix")
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert len(lines) == 7 and "Traceback" not in result.output
    assert lines[0]["item_id"] == lines[6]["item_id"] == "norm-bn-purpose"
    assert [("error" in line) for line in lines] == [False, True, True, True, True, True, False]
    assert "must be text" in lines[1]["error"] and "must be text" in lines[2]["error"]
    assert "UTF-8" in lines[3]["error"] and "must be text" in lines[5]["error"]


def test_search_batch_answers_an_over_long_line_with_an_error_and_goes_on(run, tmp_path):
    queries = tmp_path / "queries.txt"
    queries.write_bytes("BN有啥用\n".encode() + ("问" * 600 + "\n").encode() + b"\xff\n" + "ReLU和sigmoid\n".encode())
    lines = [json.loads(x) for x in run("search", "--batch", queries, "-k", "1", "--index-dir", tmp_path / "ix").stdout.splitlines()]
    assert len(lines) == 4
    assert lines[0][0]["item_id"] == "norm-bn-purpose" and "500" in lines[1]["error"]
    assert "UTF-8" in lines[2]["error"] and lines[3][0]["item_id"] == "act-relu-vs-sigmoid"


def test_undecodable_arguments_and_a_damaged_history_give_one_sentence(tmp_path):
    env = {**os.environ, "COACH_CORPUS": str(SMALL_CORPUS), "COACH_INDEX_DIR": str(tmp_path / "ix"),
           "COACH_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-m", "coach", "search", b"\xff"], capture_output=True, env=env)
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    home = tmp_path / "home"
    proc = subprocess.run([sys.executable, "-m", "coach", "history"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    db = home / "history.sqlite3"
    data = bytearray(db.read_bytes())
    data[4096 * 3: 4096 * 4] = os.urandom(4096)  # one whole page of garbage in the middle
    db.write_bytes(bytes(data))
    for name in ("history.sqlite3-wal", "history.sqlite3-shm"):
        (home / name).unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, "-m", "coach", "history"], capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


def test_ingest_takes_a_folder_and_replaces_only_when_asked(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text("# 什么是张量?\n张量就是多维数组。\n", encoding="utf-8")
    result = run("ingest", "--index-dir", tmp_path / "ix", "notes")
    assert result.exit_code == 0 and "added notes/a.md: 1 chunks" in result.output
    (tmp_path / "notes" / "a.md").write_text("# 什么是向量?\n向量就是一维数组。\n", encoding="utf-8")
    refused = CliRunner().invoke(cli, ["ingest", "--index-dir", str(tmp_path / "ix"), "notes"])
    assert refused.exit_code == 1 and "--replace" in refused.output
    replaced = run("ingest", "--index-dir", tmp_path / "ix", "--replace", "notes")
    assert "replaced notes/a.md: 1 chunks" in replaced.output
