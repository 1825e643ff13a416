"""The web app in a real browser: headless Debian Chromium driven by Playwright against a real server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from coach.history import History, utcnow
from tests.browser import *  # noqa: F403 - fixtures and helpers

pytestmark = pytest.mark.browser


# ---- 问答 -----------------------------------------------------------------------------------------
def test_a_question_gets_a_streamed_answer_with_expandable_sources(page):
    ask(page, "BN层为什么要加γ和β?")
    bot = page.locator("#chat-bot")
    expect(bot).to_contain_text("恢复原来的激活")
    page.get_by_text("出处（").last.click()
    expect(bot).to_contain_text("题库 · norm-bn-gamma-beta")
    ask(page, "那LN呢?")
    expect(bot).to_contain_text("理解为:LN层为什么要加γ和β?")


def test_a_follow_up_in_one_browser_never_uses_another_browsers_question(browser, url, page):
    ask(page, "BN层为什么要加γ和β?")
    other = browser.new_context(locale="zh-CN").new_page()
    try:
        other.goto(url)
        other.wait_for_selector("#chat-input textarea")
        ask(other, "那LN呢?")
        expect(other.locator("#chat-bot")).not_to_contain_text("理解为:")
    finally:
        other.context.close()


def test_a_question_about_nothing_in_the_knowledge_base_is_not_answered(page):
    ask(page, "红烧肉怎么做才好吃")
    expect(page.locator("#chat-bot")).to_contain_text("没有找到")


# ---- 模拟面试 ----------------------------------------------------------------------------------------
def test_a_two_question_mock_interview_runs_to_its_report(page):
    open_tab(page, "🎤 模拟面试")
    count = page.locator("#iv-count input[type=number]")
    count.fill("2")
    count.press("Tab")
    page.locator("#iv-start").click()
    expect(page.locator("#iv-question")).to_contain_text("第 1 / 2 题", timeout=WAIT_MS)
    for _ in range(6):  # two questions, each possibly followed up once
        if page.locator("#iv-report-box").is_visible():
            break
        asked = page.locator("#iv-question").inner_text()
        page.locator("#iv-answer textarea").fill("BN用小批量的均值和方差标准化激活,训练更稳定,可以用更大的学习率。")
        page.locator("#iv-submit").click()
        page.wait_for_function("q => !document.querySelector('#iv-question').innerText.includes(q)",
                               arg=asked.splitlines()[-1], timeout=WAIT_MS)
        expect(page.locator("#iv-feedback")).to_contain_text("/10", timeout=WAIT_MS)
    expect(page.locator("#iv-report")).to_contain_text("模拟面试报告", timeout=WAIT_MS)
    expect(page.locator("#iv-report")).to_contain_text("各主题得分")
    expect(page.locator("#iv-download")).to_be_visible()
    with page.expect_download() as download:
        page.locator("#iv-download").click()
    assert Path(download.value.path()).read_text(encoding="utf-8").startswith("# 模拟面试报告")


# ---- 进度 ------------------------------------------------------------------------------------------------
def test_the_review_button_starts_a_review_of_the_due_questions(page, coach):
    with History.open(coach.settings) as history:  # two items reviewed badly a week ago are due now
        for item_id in ("act-why-nonlinear", "act-relu-vs-sigmoid"):
            history.review(item_id, "activation", 1.0, now=utcnow() - timedelta(days=7))
    open_tab(page, "📈 进度")
    expect(page.locator("#progress-due")).to_contain_text("神经网络为什么需要非线性激活函数?", timeout=WAIT_MS)
    page.locator("#progress-review").click()  # under a loaded machine starting the review can take a while
    expect(page.get_by_role("tab", name="🎤 模拟面试")).to_have_attribute("aria-selected", "true", timeout=3 * WAIT_MS)
    expect(page.locator("#iv-banner")).to_contain_text("复习模式", timeout=3 * WAIT_MS)
    expect(page.locator("#iv-question")).to_contain_text("激活函数", timeout=3 * WAIT_MS)


# ---- 答案评分 ----------------------------------------------------------------------------------------
def test_grading_an_answer_shows_the_score_and_the_marked_sentences(page):
    open_tab(page, "📝 答案评分")
    page.locator("#grade-pick input").click()
    page.keyboard.type("BN层的作用")
    page.get_by_role("option", name="BN层的作用是什么?").first.click()
    page.locator("#grade-answer textarea").fill("BN用小批量的均值和方差把激活标准化。这样可以用更大的学习率,收敛更快。")
    page.locator("#grade-submit").click()
    expect(page.locator("#grade-score")).to_contain_text(" / 10", timeout=WAIT_MS)
    expect(page.locator("#grade-score")).to_contain_text("题库 · norm-bn-purpose")
    expect(page.locator("#grade-highlight")).to_contain_text("命中要点")
    expect(page.locator("#grade-details")).to_contain_text("遗漏的要点")


def test_an_empty_answer_is_told_so(page):
    open_tab(page, "📝 答案评分")
    page.locator("#grade-custom textarea").fill("BN层的作用是什么?")
    page.locator("#grade-submit").click()
    expect(page.locator("#grade-score")).to_contain_text("未作答", timeout=WAIT_MS)
    expect(page.locator("#grade-details")).to_contain_text("没有检测到作答内容")


# ---- 知识库 ------------------------------------------------------------------------------------------
def test_an_uploaded_document_is_listed_and_found_by_the_chat(page, tmp_path):
    notes = tmp_path / "wisteria-notes.md"
    notes.write_text("# 面试笔记\n\n## 什么是紫藤注意力机制?\n\n紫藤注意力把查询分成藤蔓状的分组,"
                     "每组只关注相邻的三个分组,因此计算量随序列长度线性增长。\n", encoding="utf-8")
    upload(page, notes)
    expect(page.locator("#kb-result")).to_contain_text("已添加")
    expect(page.locator("#kb-sources")).to_contain_text("wisteria-notes.md")
    open_tab(page, "💬 问答")
    ask(page, "紫藤注意力机制是什么?")
    expect(page.locator("#chat-bot")).to_contain_text("藤蔓状的分组")


def test_a_wrong_file_type_gets_one_sentence_and_the_others_are_added(page, tmp_path):
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"\x00\x01")
    good = tmp_path / "dropout-notes.md"
    good.write_text("## Dropout 推理时要做什么?\n\n推理时不丢弃神经元,按保留概率缩放输出。\n", encoding="utf-8")
    upload(page, bad, good)
    expect(page.locator("#kb-result")).to_contain_text("weights.bin:不支持这种文件类型")
    expect(page.locator("#kb-result")).to_contain_text("dropout-notes.md:已添加")
    expect(page.locator("#kb-sources")).not_to_contain_text("weights.bin")


def test_warnings_are_titled_in_chinese(page):
    open_tab(page, "📚 知识库")
    page.locator("#kb-add").click()
    toast = page.locator("[data-testid=toast-body]").first
    expect(toast).to_contain_text("请先选择要上传的文件", timeout=WAIT_MS)
    title = toast.locator(".toast-title").evaluate("e => getComputedStyle(e, '::before').content")
    assert title == '"提示"'


def test_script_in_an_uploaded_document_never_runs(page, tmp_path):
    payload = ('<script>window.__pwned=1</script>\n<img src=x onerror="window.__pwned=1">\n'
               '<a href="javascript:window.__pwned=1">点我</a>\n')
    text = tmp_path / "malicious-notes.txt"
    text.write_text("什么是蓝鲸优化器?\n\n蓝鲸优化器在每一步把学习率乘以鲸歌系数。\n" + payload, encoding="utf-8")
    markdown = tmp_path / "malicious-notes.md"
    markdown.write_text("## 蓝鲸优化器的鲸歌系数怎么设?\n\n鲸歌系数通常取0.9。\n\n" + payload, encoding="utf-8")
    upload(page, text, markdown)
    open_tab(page, "💬 问答")
    ask(page, "蓝鲸优化器是什么?")
    ask(page, "蓝鲸优化器的鲸歌系数怎么设?")
    expect(page.locator("#chat-bot")).to_contain_text("鲸歌系数")
    for block in page.get_by_text("出处（").all():
        block.click()
    page.locator("#chat-bot a", has_text="点我").first.click() if page.locator("#chat-bot a", has_text="点我").count() else None
    page.wait_for_timeout(500)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#chat-bot script").count() == 0
    assert page.locator("#chat-bot img[onerror]").count() == 0
