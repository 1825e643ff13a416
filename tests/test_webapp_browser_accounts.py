"""Several users in real browsers: each signs in on the login page and sees only their own documents
and progress (headless Chromium, a real users file, the real upload worker)."""

from __future__ import annotations

import pytest

from tests.browser import WAIT_MS, browser, expect, open_tab, upload  # noqa: F401 - fixtures
from tests.conftest import FIXTURES, coach_with_users, served

NOTES = FIXTURES / "docs" / "offbank_notes.md"
PASSWORDS = {"alice": "alice-pass-1", "bob": "bob-pass-22"}


@pytest.fixture(scope="module")
def coach(tmp_path_factory):
    coach = coach_with_users(tmp_path_factory.mktemp("browser-accounts"), PASSWORDS)
    yield coach
    coach.ingest_worker.close()


@pytest.fixture(scope="module")
def url(coach):
    with served(coach) as (_, local_url):
        yield local_url


def signed_in(browser, url, name):  # noqa: F811 - the fixture
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.goto(url)
    page.locator("input[type=text]").fill(name)
    page.locator("input[type=password]").fill(PASSWORDS[name])
    page.locator("input[type=password]").press("Enter")  # the button's label follows the browser's locale
    page.wait_for_selector("#chat-input textarea", timeout=WAIT_MS)
    return context, page


def test_the_page_asks_for_a_login_and_refuses_a_wrong_password(browser, url):  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    page.goto(url)
    page.locator("input[type=text]").fill("alice")
    page.locator("input[type=password]").fill("bob-pass-22")
    page.get_by_role("button", name="Login").click()
    expect(page.locator("body")).to_contain_text("Incorrect", timeout=WAIT_MS)
    assert page.locator("#chat-input textarea").count() == 0
    context.close()


def test_an_upload_is_listed_for_its_owner_after_a_reload_and_never_for_another_user(browser, url):  # noqa: F811
    alice_context, alice = signed_in(browser, url, "alice")
    upload(alice, NOTES)
    alice.reload()
    alice.wait_for_selector("#chat-input textarea", timeout=WAIT_MS)
    open_tab(alice, "📚 知识库")
    expect(alice.locator("#kb-sources")).to_contain_text("offbank_notes.md", timeout=WAIT_MS)
    expect(alice.locator(".coach-header").first).to_contain_text("资料 1 份", timeout=WAIT_MS)
    expect(alice.locator(".coach-header").first).to_contain_text("alice", timeout=WAIT_MS)

    bob_context, bob = signed_in(browser, url, "bob")
    open_tab(bob, "📚 知识库")
    expect(bob.locator(".coach-header").first).to_contain_text("资料 0 份", timeout=WAIT_MS)
    expect(bob.locator("#kb-sources")).not_to_contain_text("offbank_notes.md")
    # the grading list offers alice's document questions to her only
    open_tab(bob, "📝 答案评分")
    bob.locator("#grade-pick input").click()
    expect(bob.locator("ul[role=listbox]")).to_be_visible(timeout=WAIT_MS)
    expect(bob.locator("ul[role=listbox]")).not_to_contain_text("NeRF")
    alice_context.close()
    bob_context.close()


def test_progress_is_each_users_own(browser, url):  # noqa: F811
    bob_context, bob = signed_in(browser, url, "bob")
    open_tab(bob, "📝 答案评分")
    bob.locator("#grade-custom textarea").fill("BN层的作用是什么?")
    bob.locator("#grade-answer textarea").fill("BN用小批量的均值和方差标准化激活,再用γ和β缩放平移,训练更稳定、收敛更快。")
    bob.locator("#grade-submit").click()
    expect(bob.locator("#grade-score")).to_contain_text("/ 10", timeout=WAIT_MS)
    open_tab(bob, "📈 进度")
    expect(bob.locator("#progress-sessions")).to_contain_text("答案评分", timeout=WAIT_MS)

    alice_context, alice = signed_in(browser, url, "alice")
    open_tab(alice, "📈 进度")
    expect(alice.locator("#progress-empty")).to_be_visible(timeout=WAIT_MS)
    bob_context.close()
    alice_context.close()


def test_the_header_names_the_user_and_signing_out_returns_to_the_login_page(browser, url):  # noqa: F811
    context, page = signed_in(browser, url, "bob")
    header = page.locator(".coach-header").first
    expect(header).to_contain_text("bob", timeout=WAIT_MS)
    header.get_by_role("link", name="退出登录").click()
    expect(page.locator("input[type=password]")).to_be_visible(timeout=WAIT_MS)
    page.goto(url)  # the session is gone: the app asks for a login again
    expect(page.locator("input[type=password]")).to_be_visible(timeout=WAIT_MS)
    assert page.locator("#chat-input textarea").count() == 0
    context.close()


def test_a_phone_can_sign_out_too(browser, url):  # noqa: F811
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", has_touch=True,
                                  is_mobile=True, device_scale_factor=2)
    page = context.new_page()
    page.goto(url)
    page.locator("input[type=text]").fill("bob")
    page.locator("input[type=password]").fill(PASSWORDS["bob"])
    page.locator("input[type=password]").press("Enter")
    page.wait_for_selector("#chat-input textarea", timeout=WAIT_MS)
    link = page.locator(".coach-header").first.get_by_role("link", name="退出登录")
    expect(link).to_be_visible(timeout=WAIT_MS)
    assert page.locator("#tab-chat").bounding_box()["y"] < 844 / 4  # the header stays compact
    link.tap()
    expect(page.locator("input[type=password]")).to_be_visible(timeout=WAIT_MS)
    context.close()
