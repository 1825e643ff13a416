"""The mock-interview tab and its report in a real browser (issue 13: flow and report)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader

from coach.history import History, utcnow
from tests.browser import *  # noqa: F403 - fixtures and helpers

pytestmark = pytest.mark.browser

ANSWER = "BN用小批量的均值和方差标准化激活,训练更稳定,可以用更大的学习率。"


def start(page: Page, questions: int = 1, seconds: str | None = None, topic: str | None = None) -> None:
    open_tab(page, "🎤 模拟面试")
    if topic:
        page.locator("#iv-topics input").click()
        page.get_by_role("option", name=topic).first.click()
        page.keyboard.press("Escape")
    count = page.locator("#iv-count input[type=number]")
    count.fill(str(questions))
    count.press("Tab")
    if seconds:
        page.locator("#iv-limit input").click()
        page.get_by_role("option", name=seconds).click()
    page.locator("#iv-start").click()
    expect(page.locator("#iv-question")).to_contain_text(f"第 1 / {questions} 题", timeout=WAIT_MS)


def answer(page: Page, text: str = ANSWER) -> str:
    """Submit ``text`` for the current question; returns the question text that was answered."""
    asked = page.locator("#iv-question").inner_text()
    page.locator("#iv-answer textarea").fill(text)
    page.locator("#iv-submit").click()
    page.wait_for_function("q => !document.querySelector('#iv-question').innerText.includes(q)",
                           arg=asked.splitlines()[-1], timeout=WAIT_MS)
    return asked


def finish(page: Page) -> None:
    for _ in range(8):
        if page.locator("#iv-report-box").is_visible():
            return
        answer(page)
    expect(page.locator("#iv-report-box")).to_be_visible(timeout=WAIT_MS)


def in_view(page: Page, selector: str) -> bool:
    return page.evaluate("""s => { const r = document.querySelector(s).getBoundingClientRect();
        return r.top >= 0 && r.top < window.innerHeight; }""", selector)


def test_the_next_question_is_shown_first_with_the_last_feedback_folded_above_it(page):
    start(page, questions=2, seconds="2 分钟")
    answer(page, "BN就是归一化。")  # thin: a follow-up or the next question comes
    feedback = page.locator("#iv-feedback")
    expect(feedback).to_be_visible(timeout=WAIT_MS)
    expect(feedback).to_contain_text("上一题")
    expect(feedback).to_contain_text("/10")
    assert feedback.bounding_box()["y"] < page.locator("#iv-question").bounding_box()["y"]  # above, not below
    expect(page.locator("#iv-grade")).not_to_be_visible()  # folded until the candidate opens it
    assert in_view(page, "#iv-question")
    assert re.search(r"01:5\d|02:00", page.locator("#iv-countdown").inner_text())  # the clock starts with the question
    feedback.locator("button").first.click()
    expect(page.locator("#iv-grade")).to_contain_text("遗漏的要点", timeout=WAIT_MS)


def test_after_the_interview_ends_the_answer_box_is_closed_with_a_clear_note(page):
    start(page, questions=1)
    finish(page)
    expect(page.locator("#iv-answer textarea")).to_be_disabled()
    expect(page.locator("#iv-submit")).to_be_disabled()
    expect(page.locator("#iv-answer textarea")).to_have_attribute("placeholder", re.compile("面试已结束"))


def test_the_report_is_the_document_a_candidate_keeps(page):
    start(page, questions=1, topic="归一化")
    asked = page.locator("#iv-question").inner_text()
    finish(page)
    report = page.locator("#iv-report")
    expect(report).to_contain_text("模拟面试报告", timeout=WAIT_MS)
    for heading in ("你的回答", "漏掉的要点", "参考答案", "各主题得分", "接下来要复习的题目"):
        expect(report).to_contain_text(heading)
    expect(report).to_contain_text("训练更稳定")  # the answer given
    expect(report).to_contain_text("归一化")
    text = report.inner_text()
    assert "normalization" not in text and "norm-bn" not in text  # topic names, never internal ids
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}（\d+ 天后）", text)  # reviewed on a day scale
    with page.expect_download() as markdown:
        page.locator("#iv-download").click()
    name = markdown.value.suggested_filename
    assert re.fullmatch(r"面试报告-\d{4}-\d{2}-\d{2}-\d{4}-normalization\.md", name), name
    assert asked.splitlines()[-1].strip() in Path(markdown.value.path()).read_text(encoding="utf-8")
    with page.expect_download() as pdf:
        page.locator("#iv-download-pdf").click()
    assert pdf.value.suggested_filename == name.replace(".md", ".pdf")
    extracted = "".join(p.extract_text() for p in PdfReader(pdf.value.path()).pages)
    assert "模拟面试报告" in extracted and "训练更稳定" in extracted


def test_a_review_started_from_progress_shows_its_own_settings(page, coach):
    with History.open(coach.settings) as history:  # two items reviewed badly a week ago are due now
        for item_id in ("act-why-nonlinear", "act-relu-vs-sigmoid"):
            history.review(item_id, "activation", 1.0, now=utcnow() - timedelta(days=7))
    open_tab(page, "🎤 模拟面试")
    count = page.locator("#iv-count input[type=number]")
    count.fill("7")
    count.press("Tab")
    open_tab(page, "📈 进度")
    page.locator("#progress-review").click()
    expect(page.locator("#iv-banner")).to_contain_text("复习模式", timeout=3 * WAIT_MS)
    expect(page.locator("#iv-count input[type=number]")).to_have_value("2")


def test_on_a_phone_the_question_is_scrolled_into_view_when_the_interview_starts(phone):
    start(phone, questions=1)
    expect(phone.locator("#iv-question")).to_contain_text("第 1 / 1 题")
    phone.wait_for_timeout(300)
    assert in_view(phone, "#iv-question")  # not left below the settings
