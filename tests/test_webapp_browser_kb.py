"""The knowledge tab (知识库), the header and the tab bar in a real browser (headless Debian Chromium)."""

from __future__ import annotations

import re

import pytest

from coach.strings import t
from tests.browser import *  # noqa: F403 - fixtures and helpers

pytestmark = pytest.mark.browser

TABS = ["💬 问答", "🎤 模拟面试", "📝 答案评分", "📚 知识库", "📈 进度"]


def notes(tmp_path, name: str, heading: str, body: str):
    path = tmp_path / name
    path.write_text(f"# 面试笔记\n\n## {heading}\n\n{body}\n", encoding="utf-8")
    return path


def doc_count(page: Page, n: int) -> None:
    """The header says the knowledge base holds ``n`` documents."""
    expect(page.locator(".coach-header").first).to_contain_text(f"资料 {n} 份", timeout=WAIT_MS)


def pick(page: Page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.locator(f"#{elem_id}").get_by_role("option", name=option, exact=True).click()


# ---- 1. state read from the server on page load ----------------------------------------------------
def test_a_reloaded_page_lists_the_documents_and_can_remove_one(page, coach, tmp_path):
    doc = notes(tmp_path, "camellia-notes.md", "什么是山茶正则化?",
                "山茶正则化在每一层的权重上加一个花瓣形的惩罚项,让相邻通道的权重彼此接近。")
    upload(page, doc)
    count = len(coach.kb.sources())
    doc_count(page, count)

    page.reload()
    page.wait_for_selector("#chat-input textarea")
    doc_count(page, count)  # the header is not the one built at start-up
    open_tab(page, "📚 知识库")
    expect(page.locator("#kb-sources")).to_contain_text("camellia-notes.md", timeout=WAIT_MS)
    pick(page, "kb-remove-pick", "camellia-notes.md")
    page.locator("#kb-remove").click()
    expect(page.locator("#kb-result")).to_contain_text("已移除 camellia-notes.md", timeout=WAIT_MS)
    expect(page.locator("#kb-sources")).not_to_contain_text("camellia-notes.md")
    doc_count(page, count - 1)

    page.reload()  # the removal is what a reload shows too
    page.wait_for_selector("#chat-input textarea")
    doc_count(page, count - 1)
    open_tab(page, "📚 知识库")
    page.locator("#kb-remove-pick input").click()
    expect(page.locator("#kb-remove-pick").get_by_role("option", name="camellia-notes.md")).to_have_count(0)


# ---- 2. phone width ---------------------------------------------------------------------------------
def test_all_five_tabs_are_on_a_phone_screen_and_the_first_screen_is_more_than_the_title(phone):
    width, height = 390, 844
    expect(phone.get_by_role("button", name="More tabs")).to_be_hidden()
    for name in TABS:
        tab = phone.get_by_role("tab", name=name)
        expect(tab).to_be_visible()
        box = tab.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width and box["y"] + box["height"] <= height, name
    # the header and the tab bar take the top of the screen, not the screen: the tab's own content starts
    # in its upper quarter
    assert phone.locator("#tab-chat").bounding_box()["y"] < height / 4
    open_tab(phone, "📈 进度")
    expect(phone.locator("#tab-progress")).to_be_visible()
    open_tab(phone, "📚 知识库")
    expect(phone.locator("#kb-files")).to_be_visible()


# ---- 3. small things ---------------------------------------------------------------------------------
def test_the_upload_box_speaks_chinese_in_an_english_browser(browser, url):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#chat-input textarea")
        open_tab(page, "📚 知识库")
        zone = page.locator("#kb-files [data-testid=upload-text]")
        expect(zone).to_be_visible()
        # Gradio's own wording follows the browser's language; none of it is shown ...
        shown = zone.evaluate("""e => [...e.childNodes].filter(n => n.nodeType === 3 || n.tagName === 'SPAN')
            .filter(n => (n.textContent || '').trim())
            .map(n => n.nodeType === 3 ? getComputedStyle(e).fontSize : getComputedStyle(n).display === 'none'
                 ? '0px' : getComputedStyle(n).fontSize)""")
        assert shown and all(size == "0px" for size in shown), shown
        # ... the box says it in Chinese
        hint = zone.evaluate("e => getComputedStyle(e, '::after').content")
        assert hint == f'"{t("kb.drop_hint")}"'
        assert re.search(r"[\u4e00-\u9fff]", hint)
    finally:
        context.close()


def test_the_rebuild_button_is_hidden_unless_the_operator_enables_it(page, coach, monkeypatch):
    open_tab(page, "📚 知识库")
    expect(page.locator("#kb-files")).to_be_visible()
    expect(page.get_by_role("button", name=t("kb.rebuild"))).to_have_count(0)
    expect(page.get_by_text(t("kb.rebuild_info"))).to_have_count(0)

    from coach.webapp import build_app
    from coach.webapp.knowledge_tab import REBUILD_ENV

    monkeypatch.setenv(REBUILD_ENV, "1")
    config = build_app(coach).get_config_file()
    [button] = [c for c in config["components"] if c.get("props", {}).get("elem_id") == "kb-rebuild"]
    assert button["props"]["visible"] is True


def test_the_bank_table_shows_the_question_first_and_the_id_last(page, coach):
    open_tab(page, "📚 知识库")
    table = page.locator("#bank-table")
    headers = table.locator("thead th[role=columnheader]")
    expect(headers.first).to_have_attribute("title", t("kb.col_question"), timeout=WAIT_MS)
    expect(headers.last).to_have_attribute("title", t("kb.col_id"))
    first = table.get_by_role("gridcell").first  # row 1, column 1
    questions = {i.question for i in coach.kb.bank.items.values()}
    expect(first).to_be_visible()
    assert first.inner_text().strip() in questions
    first.click()
    item = next(i for i in coach.kb.bank.items.values() if i.question == first.inner_text().strip())
    expect(page.locator("#bank-detail")).to_contain_text(item.answer.strip()[:20], timeout=WAIT_MS)


def test_a_document_source_is_labelled_without_repeating_its_question(page, tmp_path):
    heading = "什么是海棠归一化?"
    doc = notes(tmp_path, "begonia-notes.md", heading, "海棠归一化先把每个样本的特征按花瓣分组,再在组内减均值除以标准差。")
    upload(page, doc)
    open_tab(page, "💬 问答")
    ask(page, heading)
    page.get_by_text("出处（").last.click()
    expect(page.locator("#chat-bot").get_by_text("begonia-notes.md").last).to_be_visible(timeout=WAIT_MS)
    lines = [line for line in page.locator("#chat-bot").inner_text().splitlines() if "begonia-notes.md" in line]
    assert lines and all(line.count(heading.rstrip("?")) <= 1 for line in lines), lines
