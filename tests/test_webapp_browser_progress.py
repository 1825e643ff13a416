"""The progress tab in a real browser (issue 13: progress and its state)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from coach.history import GradedAnswer, History, NewTurn, utcnow
from tests.browser import *  # noqa: F403 - fixtures and helpers
from tests.test_webapp_browser_interview import finish, start

pytestmark = pytest.mark.browser


def practice(coach, score: float, when, n: int) -> None:
    turn = NewTurn("question", "norm-bn-purpose", "normalization", 1, "BN层的作用是什么?")
    graded = GradedAnswer("BN标准化激活。", score, "部分正确", {"covered": [], "missing": []}, 0.0, False, review=True)
    with History.open(coach.settings) as history:
        history.record_practice(f"20261201-12000{n}-abcde{n}", turn, graded, when)


@pytest.fixture(scope="module", autouse=True)
def two_sessions(coach):
    """The same day, two sessions on one topic: 2.0 first, then 8.2."""
    now = utcnow()
    practice(coach, 2.0, now - timedelta(hours=3), 1)
    practice(coach, 8.2, now - timedelta(hours=1), 2)


def row(page: Page, table: str, text: str):
    """The first row of a table (Gradio's grid) that contains ``text``."""
    return page.locator(f"{table} [role=row]", has_text=text).first


def cells(page: Page, table: str, text: str) -> list[str]:
    return [c.strip() for c in row(page, table, text).locator("td, [role=gridcell]").all_inner_texts() if c.strip()]


def test_recent_score_is_the_latest_sessions_not_the_average(page):
    open_tab(page, "📈 进度")
    expect(page.locator("#progress-topics")).to_contain_text("归一化", timeout=WAIT_MS)
    found = cells(page, "#progress-topics", "归一化")
    assert found[2:4] == ["5.1", "8.2"], found  # mean over both sessions 5.1; the latest session 8.2


def test_the_trend_is_plotted_by_session_number_not_a_repeated_date(page):
    open_tab(page, "📈 进度")
    chart = page.locator("#progress-chart")
    expect(chart).to_contain_text("场次", timeout=WAIT_MS)
    assert not re.search(r"(\d{2}-\d{2}).*\1", chart.inner_text(), re.S)


def test_an_answer_graded_in_the_grading_tab_is_recorded(page):
    open_tab(page, "📝 答案评分")
    page.locator("#grade-custom textarea").fill("ReLU为什么比sigmoid好?")
    page.locator("#grade-answer textarea").fill("sigmoid两端饱和导数最大0.25,深层连乘梯度消失;ReLU正区间导数为1,计算也简单。")
    page.locator("#grade-submit").click()
    expect(page.locator("#grade-score")).to_contain_text(" / 10", timeout=WAIT_MS)
    open_tab(page, "📈 进度")
    sessions = page.locator("#progress-sessions")
    expect(sessions).to_contain_text("激活函数", timeout=WAIT_MS)
    expect(sessions).to_contain_text("答案评分")


def test_clicking_a_past_session_opens_its_report(page):
    open_tab(page, "📈 进度")
    expect(page.locator("#progress-sessions")).to_contain_text("归一化", timeout=WAIT_MS)
    row(page, "#progress-sessions", "归一化").locator("td, [role=gridcell]").nth(1).click()
    report = page.locator("#progress-report")
    expect(report).to_contain_text("模拟面试报告", timeout=WAIT_MS)
    expect(report).to_contain_text("BN层的作用是什么?")
    with page.expect_download() as download:
        page.locator("#progress-download").click()
    assert download.value.suggested_filename.startswith("面试报告-")


def test_after_an_interview_the_progress_tab_of_the_same_page_shows_it(page):
    start(page, questions=1)
    finish(page)
    open_tab(page, "📈 进度")
    expect(page.locator("#progress-sessions")).to_contain_text("已完成", timeout=WAIT_MS)
    expect(page.locator("#progress-chart canvas, #progress-chart svg").first).to_be_visible(timeout=WAIT_MS)
