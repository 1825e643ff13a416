"""The web app for an English speaker, in a real browser: the 中文 / English switch, the bank's English
questions, and the line saying that the reference answers are in Chinese."""

from __future__ import annotations

import re

import pytest

from tests.browser import *  # noqa: F403 - fixtures and helpers

pytestmark = pytest.mark.browser

NOTE = "reference answers in the question bank are written in Chinese"
CJK = re.compile(r"[\u3400-\u9fff]")


def to_english(page: Page) -> None:
    page.locator("#coach-lang").get_by_text("English", exact=True).click()
    expect(page.get_by_role("tab", name="💬 Ask")).to_be_visible(timeout=WAIT_MS)


# ---- 2 and 3: an English question in the chat -----------------------------------------------------------
def test_an_english_question_gets_the_banks_english_question_and_a_note_that_the_answer_is_chinese(page, coach):
    ask(page, "What does BN do in a network?")
    bot = page.locator("#chat-bot [data-testid=bot]").first
    expect(bot).to_contain_text(coach.kb.bank.items["norm-bn-purpose"].question_en, timeout=WAIT_MS)
    expect(bot).not_to_contain_text(coach.kb.bank.items["norm-bn-purpose"].question)
    expect(bot).to_contain_text(NOTE)

    page.locator("#chat-clear").click()  # a Chinese question on the Chinese page: as before, no note
    expect(page.locator("#chat-bot [data-testid=user]")).to_have_count(0)
    ask(page, "BN层的作用是什么?")
    bot = page.locator("#chat-bot [data-testid=bot]").first
    expect(bot).to_contain_text(coach.kb.bank.items["norm-bn-purpose"].question)
    expect(bot).not_to_contain_text(NOTE)


# ---- 1. the switch -------------------------------------------------------------------------------------------
def test_the_switch_puts_all_five_tabs_in_english_for_this_browser_tab_only(browser, url, page):
    other = browser.new_context(locale="zh-CN").new_page()
    try:
        other.goto(url)
        other.wait_for_selector("#chat-input textarea")
        to_english(page)

        expect(page.locator("#chat-send")).to_have_text("Send")
        expect(page.locator("#chat-input textarea")).to_have_attribute("placeholder", re.compile("Enter to send"))
        expect(page.locator("#coach-top")).to_contain_text("Interview Coach")
        open_tab(page, "🎤 Mock interview")
        expect(page.locator("#iv-start")).to_have_text("Start interview")
        expect(page.locator("#iv-question")).to_contain_text("No interview yet")
        expect(page.locator("#iv-level")).to_contain_text("Adaptive")
        open_tab(page, "📝 Grade an answer")
        expect(page.locator("#grade-submit")).to_have_text("Grade")
        expect(page.locator("#grade-answer")).to_contain_text("Your answer")
        open_tab(page, "📚 Knowledge base")
        expect(page.locator("#kb-add")).to_have_text("Add to the knowledge base")
        drop_zone = "getComputedStyle(document.querySelector('#kb-files [data-testid=upload-text]'), '::after').content"
        assert "Drop files here" in page.evaluate(drop_zone)
        expect(page.locator("#bank-table")).to_contain_text("Question")
        expect(page.locator("#bank-table")).to_contain_text("What does a batch normalization layer do?")
        open_tab(page, "📈 Progress")
        expect(page.locator("#progress-refresh")).to_have_text("Refresh")
        expect(page.locator("#progress-due")).to_contain_text("Questions due for review")
        for tab in page.get_by_role("tab").all():
            assert not CJK.search(tab.inner_text()), tab.inner_text()

        # the other browser tab is still in Chinese, and a message there is too
        expect(other.get_by_role("tab", name="💬 问答")).to_be_visible()
        expect(other.locator("#chat-send")).to_have_text("发送")

        # messages follow the page's language: a toast, and back to Chinese on 中文
        open_tab(page, "📝 Grade an answer")
        page.locator("#grade-submit").click()
        expect(page.locator(".toast-body")).to_contain_text("Pick a bank question", timeout=WAIT_MS)
        title = "getComputedStyle(document.querySelector('.toast-title'), '::before').content"
        assert page.evaluate(title) == '"Note"'
        page.locator("#coach-lang").get_by_text("中文", exact=True).click()
        expect(page.locator("#grade-submit")).to_have_text("评分", timeout=WAIT_MS)
        expect(page.get_by_role("tab", name="💬 问答")).to_be_visible()
    finally:
        other.context.close()


def test_lang_en_in_the_address_opens_the_page_in_english(browser, url):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    try:
        english = context.new_page()
        english.goto(url.rstrip("/") + "/?lang=en")
        expect(english.get_by_role("tab", name="💬 Ask")).to_be_visible(timeout=WAIT_MS)
        expect(english.locator("#chat-send")).to_have_text("Send")
    finally:
        context.close()


# ---- 2 and 3 on the English page: interview, grading, chat -------------------------------------------------
def test_in_english_the_interview_asks_the_english_question_and_says_the_answer_is_chinese(page, coach):
    to_english(page)
    open_tab(page, "🎤 Mock interview")
    count = page.locator("#iv-count input[type=number]")
    count.fill("1")
    count.press("Tab")
    page.locator("#iv-start").click()
    question = page.locator("#iv-question")
    expect(question).to_contain_text("Question 1 / 1", timeout=WAIT_MS)
    english = [item.question_en for item in coach.kb.bank.items.values()]
    asked = question.inner_text()
    assert any(q in asked for q in english), asked
    page.locator("#iv-answer textarea").fill("I don't know")
    page.locator("#iv-submit").click()
    expect(page.locator("#iv-report-box")).to_be_visible(timeout=WAIT_MS)
    page.locator("#iv-feedback").get_by_text("Previous answer").click()
    grade = page.locator("#iv-grade")
    expect(grade).to_contain_text("Reference answer", timeout=WAIT_MS)
    expect(grade).to_contain_text(NOTE)


def test_in_english_the_grading_list_shows_english_questions_and_the_model_answer_a_note(page, coach):
    item = coach.kb.bank.items["act-relu-vs-sigmoid"]
    to_english(page)
    open_tab(page, "📝 Grade an answer")
    pick = page.locator("#grade-pick input")
    pick.click()
    pick.fill("ReLU preferred")
    page.get_by_role("option", name=re.compile(re.escape(item.question_en))).click()
    page.locator("#grade-answer textarea").fill("ReLU does not saturate for positive inputs, so gradients do not vanish.")
    page.locator("#grade-submit").click()
    expect(page.locator("#grade-score")).to_contain_text(item.question_en, timeout=WAIT_MS)
    details = page.locator("#grade-details")
    expect(details).to_contain_text("Reference answer")
    expect(details).to_contain_text(NOTE)


def test_on_the_english_page_a_chinese_question_is_answered_under_its_english_question_with_the_note(page, coach):
    to_english(page)
    ask(page, "BN层为什么要加γ和β?")
    bot = page.locator("#chat-bot [data-testid=bot]").first
    expect(bot).to_contain_text(coach.kb.bank.items["norm-bn-gamma-beta"].question_en)
    expect(bot).to_contain_text(NOTE)
    page.get_by_text("Sources (").last.click()
    expect(page.locator("#chat-bot")).to_contain_text("Bank · norm-bn-gamma-beta")
