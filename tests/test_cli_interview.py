"""`coach interview`, `coach review` and `coach history` in a terminal or with answers piped in."""

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from coach.cli import cli
from coach.config import ROOT, Settings
from coach.history import History, utcnow
from tests.conftest import SMALL_CORPUS

GRADE_LINE = re.compile(r"得分 \d+\.\d/10")
REPORT_NAME = re.compile(r"面试报告-\d{4}-\d{2}-\d{2}-\d{4}-[^/]+\.md")


@pytest.fixture(autouse=True)
def small_corpus(monkeypatch):
    monkeypatch.setenv("COACH_CORPUS", str(SMALL_CORPUS))


@pytest.fixture
def home() -> Path:
    return Settings.from_env().home


def coach(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def saved_report(output: str) -> Path:
    return Path(re.search(r"报告已保存:(.+\.md)", output).group(1).strip())


@pytest.mark.parametrize("answers, graded", [
    ("跳过\n不知道\n", 2),
    ("跳过\n\n不知道\n", 3),
], ids=["skip-and-dont-know", "with-an-empty-line"])
def test_piped_answers_are_graded_one_a_line_and_end_with_a_saved_report(home, answers, graded):
    result = coach("interview", "--questions", str(graded), "--seed", "3", input=answers)
    assert result.exit_code == 0, result.output
    assert len(GRADE_LINE.findall(result.output)) == graded and "得分 0.0/10" in result.output
    assert "参考答案" in result.output and "你的回答>" not in result.output  # no prompt when stdin is a pipe
    report = result.output[result.output.index("# 模拟面试报告"):]
    assert len(re.findall(r"\*\*得分:\d+\.\d/10\*\*", report)) == graded and "## 接下来要复习的题目" in report
    path = saved_report(result.output)
    assert path.parent == home / "reports" and REPORT_NAME.fullmatch(path.name)
    assert path.read_text(encoding="utf-8").startswith("# 模拟面试报告")


def test_a_real_answer_shows_covered_and_missed_points():
    answer = "BN在每个小批量上计算每个通道的均值和方差来做标准化。"
    result = coach("interview", "--topics", "normalization", "--difficulty", "1", "--questions", "1",
                   input=answer + "\n不知道\n")
    assert result.exit_code == 0, result.output
    assert "BN层的作用是什么?" in result.output and "✓" in result.output and "✗" in result.output


def test_end_of_input_finishes_early_with_a_report_of_what_was_answered():
    result = coach("interview", "--questions", "3", "--seed", "3", input="不知道\n")
    assert result.exit_code == 0, result.output
    assert "输入结束" in result.output and "状态:提前结束" in result.output
    assert len(GRADE_LINE.findall(result.output)) == 1 and "题数 1" in result.output


def test_a_too_long_answer_is_refused_and_the_question_asked_again():
    result = coach("interview", "--questions", "1", input="很长" * 3000 + "\n跳过\n")
    assert result.exit_code == 0, result.output
    assert "error: The answer has 6000 characters" in result.output and "得分 0.0/10" in result.output


@pytest.mark.parametrize("topics", [["--topics", "nope"], ["--topics", "normalization,nope"]],
                         ids=["unknown", "one-of-two-unknown"])
def test_an_unknown_topic_is_one_line_listing_the_valid_ids(topics):
    result = CliRunner().invoke(cli, ["interview", *topics])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: Unknown topic 'nope'; valid topic ids are: normalization, activation."


def test_history_lists_a_finished_session_and_progress_per_topic():
    assert "还没有面试记录" in coach("history").output
    run = coach("interview", "--questions", "2", "--seed", "4", input="跳过\n跳过\n")
    session_id = re.search(r"场次 (\d{8}-\d{6}-[0-9a-f]{6})", run.output).group(1)
    result = coach("history")
    assert result.exit_code == 0
    assert session_id in result.output and "已完成" in result.output and "2题" in result.output
    assert "平均 0.0/10" in result.output and "各主题进度" in result.output


def test_review_says_so_when_nothing_is_due():
    result = coach("review")
    assert result.exit_code == 0 and "nothing is due for review" in result.output


def test_review_asks_the_questions_that_are_due():
    with History(Settings.from_env().history_db) as history:
        history.review("norm-bn-vs-ln", "normalization", 1.0, now=utcnow() - timedelta(days=3))
    result = coach("review", input="跳过\n")
    assert result.exit_code == 0, result.output
    assert "BN和LN有什么区别?" in result.output and len(GRADE_LINE.findall(result.output)) == 1


def test_a_real_process_with_answers_piped_on_stdin(tmp_path):
    env = {**os.environ, "COACH_CORPUS": str(SMALL_CORPUS), "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run([sys.executable, "-m", "coach.cli", "interview", "--questions", "2", "--seed", "1",
                           "--time-limit", "60"], input="跳过\n不知道\n", capture_output=True, text=True,
                          encoding="utf-8", env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(GRADE_LINE.findall(done.stdout)) == 2 and "# 模拟面试报告" in done.stdout
    assert len(re.findall(r"\d+\.\d/10", done.stdout[done.stdout.index("# 模拟面试报告"):])) >= 2
    assert REPORT_NAME.fullmatch(saved_report(done.stdout).name)
    assert saved_report(done.stdout).parent == Path(os.environ["COACH_HOME"]) / "reports"


def test_an_interview_over_my_documents_asks_their_questions_and_cites_them():
    notes = ROOT / "tests" / "fixtures" / "docs" / "llm_notes.md"
    assert coach("ingest", str(notes)).exit_code == 0
    result = coach("interview", "--topics", "docs", "--questions", "2", input="不知道\n不知道\n")
    assert result.exit_code == 0, result.output
    assert "我的资料 · llm_notes.md" in result.output and "来源:llm_notes.md" in result.output
    assert len(GRADE_LINE.findall(result.output)) == 2


def test_asking_for_documents_when_there_are_none_gets_one_sentence():
    result = CliRunner().invoke(cli, ["interview", "--topics", "docs"], input="")
    assert result.exit_code != 0 and "upload a Q&A page first" in result.output
    assert "Traceback" not in result.output
