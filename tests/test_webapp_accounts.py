"""Several users on one server: each signs in and has their own history, interviews and documents.

A real server over the small corpus, a real users file (scrypt hashes), real gradio_client sessions
that log in, and the real upload worker writing a user's own document index.
"""

from __future__ import annotations

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from coach.accounts import user_key
from coach.history import History
from tests.conftest import FIXTURES, coach_with_users, served, small_coach

NOTES = FIXTURES / "docs" / "offbank_notes.md"  # NeRF, KAN, PointNet: nothing the bank answers
NERF = "NeRF是怎么表示和渲染一个场景的？"
PASSWORDS = {"alice": "alice-pass-1", "鲍勃": "bob-pass-22"}


@pytest.fixture(scope="module")
def accounts_coach(tmp_path_factory):
    coach = coach_with_users(tmp_path_factory.mktemp("accounts"), PASSWORDS)
    yield coach
    coach.ingest_worker.close()


@pytest.fixture(scope="module")
def url(accounts_coach):
    with served(accounts_coach) as (_, local_url):
        yield local_url


def client(url: str, name: str) -> Client:
    return Client(url, auth=(name, PASSWORDS[name]), verbose=False)


def history_of(coach, name: str) -> History:
    return History.open(coach.space(name).settings)


def test_a_wrong_password_or_an_unknown_user_cannot_sign_in(url):
    for auth in (("alice", "bob-pass-22"), ("mallory", "alice-pass-1")):
        with pytest.raises(Exception):  # noqa: B017 - gradio_client raises on a refused login, whatever its class
            Client(url, auth=auth, verbose=False)


def test_each_users_documents_answer_only_that_user(url, accounts_coach):
    alice = accounts_coach.space("alice")
    report = alice.add_documents([NOTES])  # through the real upload worker, into alice's own index
    assert report.added == {"offbank_notes.md": 4}, report

    text, answer = client(url, "alice").predict(NERF, api_name="/ask")
    assert answer["grounded"] and answer["sources"][0]["source"] == "offbank_notes.md", text
    text, answer = client(url, "鲍勃").predict(NERF, api_name="/ask")
    assert all(s["source"] != "offbank_notes.md" for s in answer["sources"]), text
    assert not answer["grounded"]

    # the shared index is untouched: the document lives in alice's folder, named by her key
    assert accounts_coach.kb.sources() == {}
    assert accounts_coach.space("鲍勃").kb.all_sources() == {}
    home = accounts_coach.settings.home / "users" / user_key("alice")
    assert alice.settings.home == home and (home / "index" / "CURRENT").is_file()
    assert sorted(alice.kb.sources()) == ["offbank_notes.md"]
    assert not (accounts_coach.space("鲍勃").settings.home / "index").exists()  # nothing written for a reader


def test_an_interview_belongs_to_the_user_who_started_it(url, accounts_coach):
    alice, bob = client(url, "alice"), client(url, "鲍勃")
    token, first = alice.predict(topics=["normalization"], questions=1, api_name="/interview_start")
    with pytest.raises(AppError, match="unknown interview session token|面试"):
        bob.predict(token, "BN用小批量的均值和方差做标准化。", api_name="/interview_answer")
    with pytest.raises(AppError):
        bob.predict(token, api_name="/interview_report")
    answers = 0
    for _ in range(3):  # the main question and any follow-up
        result, nxt = alice.predict(token, "BN用小批量的均值和方差做标准化,再用γ和β缩放平移。", api_name="/interview_answer")
        answers += 1
        assert result["score"] is not None
        if nxt is None:
            break

    with history_of(accounts_coach, "alice") as history:
        sessions = history.list_sessions()
        assert len(sessions) == 1 and sessions[0].answers == answers and sessions[0].status == "finished"
    with history_of(accounts_coach, "鲍勃") as history:
        assert history.list_sessions() == []
    # the app without a user (the operator's) has no history of either
    assert not accounts_coach.settings.history_db.exists()


def test_graded_practice_counts_for_the_grader_only(url, accounts_coach):
    bob = client(url, "鲍勃")
    item = next(iter(accounts_coach.kb.bank.items))
    graded = bob.predict(answer="它用均值和方差做标准化,训练更稳定。", question_id=item, api_name="/grade")
    assert graded["score"] is not None
    # /grade over the API does not record practice; the page does (tests/test_webapp_browser_accounts.py)
    with history_of(accounts_coach, "鲍勃") as history:
        assert history.list_sessions() == []


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    """The app behind a reverse proxy that names the user in X-Forwarded-User (no login page)."""
    coach = small_coach(tmp_path_factory.mktemp("proxied"))
    coach.trusted_header = "X-Forwarded-User"
    with served(coach) as (_, local_url):
        yield coach, local_url


def as_user(url: str, name: str | None) -> Client:
    return Client(url, headers={"X-Forwarded-User": name} if name else {}, verbose=False)


def test_a_trusted_proxy_header_names_the_user(proxied):
    coach, url = proxied
    token, _ = as_user(url, "carol").predict(topics=["normalization"], questions=1, api_name="/interview_start")
    with pytest.raises(AppError):
        as_user(url, "dave").predict(token, "BN做标准化。", api_name="/interview_answer")
    result, _ = as_user(url, "carol").predict(token, "BN用均值和方差做标准化。", api_name="/interview_answer")
    assert result["verdict"]
    with History.open(coach.space("carol").settings) as history:
        assert len(history.list_sessions()) == 1


@pytest.mark.parametrize("name", [None, "../../etc", "a b"])
def test_without_a_valid_proxy_header_a_request_is_refused_in_one_sentence(proxied, name):
    _, url = proxied
    with pytest.raises(AppError, match="X-Forwarded-User header") as caught:
        as_user(url, name).predict("BN的作用", api_name="/ask")
    assert "Traceback" not in str(caught.value)
