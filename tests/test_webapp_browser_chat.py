"""The chat tab (问答) in a real browser: where a new answer is shown, what it repeats, what can be clicked,
and the chat at phone width."""

from __future__ import annotations

from dataclasses import replace

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser import *  # noqa: F403 - fixtures and helpers

pytestmark = pytest.mark.browser

OFFLINE_NOTE = "未配置大模型"
CLICK_MS = 5_000

# The chat's visible area (the box that scrolls, or the window when nothing inside the chat scrolls),
# and where the last question and the first message of its answer are in it.
LAST_TURN = """() => {
  const bot = document.getElementById('chat-bot');
  const box = [bot, ...bot.querySelectorAll('*')].find(e =>
    /(auto|scroll)/.test(getComputedStyle(e).overflowY) && e.scrollHeight > e.clientHeight + 1);
  const view = box ? box.getBoundingClientRect() : {top: 0, bottom: innerHeight};
  const rows = bot.querySelectorAll('.message-row');
  const questions = bot.querySelectorAll('.message-row.user-row');
  const question = questions[questions.length - 1];
  const answer = [...rows].slice([...rows].indexOf(question) + 1).find(r => r.classList.contains('bot-row'));
  return {top: view.top, bottom: view.bottom, question: question.getBoundingClientRect().top,
          answer: answer.getBoundingClientRect().top};
}"""

# Elements of the chat that scroll their own content (a box scrolling inside the page).
INNER_SCROLLING = """() => {
  const bot = document.getElementById('chat-bot');
  return [bot, ...bot.querySelectorAll('*')].filter(e =>
    /(auto|scroll)/.test(getComputedStyle(e).overflowY) && e.scrollHeight > e.clientHeight + 1).length;
}"""


# Is the element with this selector inside the chat's visible area (and not under the input row)?
SEEN = """selector => {
  const bot = document.getElementById('chat-bot'), e = bot.querySelector(selector);
  const box = [bot, ...bot.querySelectorAll('*')].find(b =>
    /(auto|scroll)/.test(getComputedStyle(b).overflowY) && b.scrollHeight > b.clientHeight + 1);
  const view = box ? box.getBoundingClientRect() : {top: 0, bottom: innerHeight};
  const input = document.getElementById('chat-compose').getBoundingClientRect();
  const r = e.getBoundingClientRect();
  return r.top >= view.top - 1 && r.bottom <= view.bottom + 1 && r.top >= 0
         && (r.bottom <= input.top + 1 || r.top >= input.bottom);
}"""


def in_view(page: Page, locator) -> bool:
    box = locator.bounding_box()
    height = page.viewport_size["height"]
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


# ---- 1. a new answer is read from its start -------------------------------------------------------
def test_each_new_answer_is_shown_from_the_question_and_its_first_lines(page):
    for question in ("LN的作用是什么", "BN层为什么要加γ和β?", "BN和LN有什么区别?", "LN的作用是什么"):
        ask(page, question)
        placed = f"""() => {{ const t = ({LAST_TURN})();
                             return t.top - 1 <= t.question && t.question < t.answer && t.answer <= t.bottom - 60; }}"""
        try:  # the page scrolls once the answer is drawn: give a loaded machine a moment
            page.wait_for_function(placed, timeout=CLICK_MS)
        except PlaywrightTimeout:  # the assertion below says where it was
            pass
        turn = page.evaluate(LAST_TURN)
        assert turn["top"] - 1 <= turn["question"] < turn["answer"] <= turn["bottom"] - 60, (question, turn)


# ---- 2. 要点 only where they add something ---------------------------------------------------------------
def test_key_points_are_listed_only_when_the_answer_does_not_already_make_them(page, coach, monkeypatch):
    ask(page, "BN层为什么要加γ和β?")  # its answer makes all three of its key points
    bot = page.locator("#chat-bot")
    expect(bot).to_contain_text("恢复原来的激活")
    expect(bot).not_to_contain_text("要点")

    items = coach.kb.bank.items  # the same answer without its last sentence leaves one point unmade
    item = items["norm-bn-gamma-beta"]
    monkeypatch.setitem(items, item.id, replace(item, answer=item.answer.strip().rsplit("\n", 1)[0]))
    page.locator("#chat-clear").click()
    expect(page.locator("#chat-bot [data-testid=user]")).to_have_count(0)
    ask(page, "BN层为什么要加γ和β?")
    answer = page.locator("#chat-bot [data-testid=bot]").first
    expect(answer).to_contain_text("要点")
    expect(answer).to_contain_text("当γ等于标准差、β等于均值时可以恢复原来的激活")
    expect(answer).not_to_contain_text("γ和β是可学习的缩放和平移,让网络自己决定最合适的分布")


# ---- 3. citations and related questions can be clicked ------------------------------------------------
def test_a_citation_opens_its_source(page):
    ask(page, "LN的作用是什么")  # [1] answers it, [2] is only related
    bot = page.locator("#chat-bot")
    expect(bot).not_to_contain_text("题库 · norm-bn-purpose")  # the sources block starts closed
    bot.get_by_role("button", name="[2]").first.click(timeout=CLICK_MS)
    shown = bot.locator(".chat-source-shown").first
    expect(shown).to_contain_text("[2] 可能相关 · 题库 · norm-bn-purpose")
    page.wait_for_function(f"() => ({SEEN})('.chat-source-shown')", timeout=CLICK_MS)


def test_a_related_question_is_asked_when_clicked(page):
    ask(page, "为什么要归一化")  # nothing answers it; "BN层的作用是什么?" is listed as possibly related
    bot = page.locator("#chat-bot")
    expect(bot).to_contain_text("可能相关")
    bot.get_by_role("link", name="BN层的作用是什么?").click(timeout=CLICK_MS)
    expect(bot.locator("[data-testid=user]").last).to_have_text("BN层的作用是什么?", timeout=WAIT_MS)
    expect(bot).to_contain_text("把激活减均值、除以标准差", timeout=WAIT_MS)
    ask(page, "LN的作用是什么")  # a related entry under an answer works the same way
    bot.get_by_role("link", name="BN层的作用是什么?").last.click(timeout=CLICK_MS)
    expect(bot.locator("[data-testid=user]")).to_have_count(4, timeout=WAIT_MS)
    expect(bot.locator("[data-testid=user]").last).to_have_text("BN层的作用是什么?")


# ---- 4. the offline note once ---------------------------------------------------------------------------
def test_the_no_model_note_is_shown_once_not_under_every_answer(page):
    ask(page, "BN层为什么要加γ和β?")
    ask(page, "BN和LN有什么区别?")
    ask(page, "ReLU和sigmoid比有什么好处?")
    assert page.locator("#chat-bot").inner_text().count(OFFLINE_NOTE) == 1
    expect(page.locator("#chat-bot [data-testid=bot]").first).to_contain_text(OFFLINE_NOTE)


# ---- 5. phone width -------------------------------------------------------------------------------------
def test_on_a_phone_the_input_is_on_the_first_screen_and_only_the_page_scrolls(phone):
    textbox = phone.locator("#chat-input textarea")
    assert phone.evaluate("scrollY") == 0 and in_view(phone, textbox)
    for question in ("LN的作用是什么", "BN层为什么要加γ和β?", "BN和LN有什么区别?"):
        ask(phone, question)
        assert phone.evaluate(INNER_SCROLLING) == 0  # no box scrolling inside the scrolling page
        turn = phone.evaluate(LAST_TURN)  # the new question is in view, not hidden under the input
        assert 0 <= turn["question"] < turn["answer"] < textbox.bounding_box()["y"], (question, turn)
    assert phone.evaluate("document.documentElement.scrollHeight") > phone.viewport_size["height"]
    phone.evaluate("window.scrollTo(0, 0)")
    assert in_view(phone, textbox)  # the input stays at hand wherever the page is scrolled
