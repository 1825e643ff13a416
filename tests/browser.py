"""Shared pieces of the browser tests: a real server over the small corpus, Debian's Chromium, helpers.

A test module uses them with ``from tests.browser import *`` (fixtures included), so each
module gets its own server and its own state folders.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import served

__all__ = ["CHROMIUM", "WAIT_MS", "Page", "ask", "browser", "expect", "open_tab", "page", "phone", "upload",
           "url"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def url(coach):
    with served(coach) as (_, local_url):
        yield local_url


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing; install Debian's browser with `apt-get install chromium` "
                    "(scripts/test.sh does this) and run the tests again.")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def phone(browser, url) -> Page:
    """The page at phone width (390 x 844, touch), as a candidate on a phone sees it."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", has_touch=True,
                                  is_mobile=True, device_scale_factor=2)
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#chat-input textarea")
    yield page
    context.close()


@pytest.fixture
def page(browser, url) -> Page:
    """A fresh browser context per test: its own cookies, its own Gradio session."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#chat-input textarea")
    yield page
    context.close()


def ask(page: Page, question: str) -> None:
    """Type a question in the chat and wait until its answer (and its sources block, if any) is complete."""
    before = page.locator("#chat-bot .message-row, #chat-bot [data-testid='user']").count()
    page.locator("#chat-input textarea").fill(question)
    page.locator("#chat-input textarea").press("Enter")
    expect(page.locator("#chat-bot")).to_contain_text(question, timeout=WAIT_MS)
    expect(page.locator("#chat-input textarea")).to_have_value("", timeout=WAIT_MS)
    page.wait_for_function("n => document.querySelectorAll('#chat-bot .message-row, #chat-bot "
                           "[data-testid=\"user\"]').length > n", arg=before, timeout=WAIT_MS)
    expect(page.locator("#chat-bot .generating")).to_have_count(0, timeout=WAIT_MS)


def open_tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def upload(page: Page, *files: Path) -> None:
    open_tab(page, "📚 知识库")
    page.locator("#kb-files input[type=file]").set_input_files([str(f) for f in files])
    for f in files:
        expect(page.locator("#kb-files")).to_contain_text(f.stem, timeout=WAIT_MS)
    page.locator("#kb-add").click()
    for f in files:  # the first upload starts the ingest worker, which loads its model
        expect(page.locator("#kb-result")).to_contain_text(f.name, timeout=3 * WAIT_MS)


