"""Two replicas of the web app on one PostgreSQL database, as behind a load balancer.

Each replica is a real server with its own engine and its own copy of the shared index; the
state is in a fresh database on the throwaway PostgreSQL server. A reverse proxy would name the
user in a header; the clients here send it themselves to whichever replica they like.
"""

from __future__ import annotations

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from coach.config import Settings
from coach.history import History
from coach.service import Coach
from tests.conftest import FIXTURES, SMALL_CORPUS, served

NOTES = FIXTURES / "docs" / "offbank_notes.md"
NERF = "NeRF是怎么表示和渲染一个场景的？"
HEADER = "X-Forwarded-User"


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, postgres):
    """Two replicas (own index folders and homes, one database), served on two loopback ports."""
    url = postgres.new_database("replicas")
    coaches, servers, urls = [], [], []
    for n in (1, 2):
        root = tmp_path_factory.mktemp(f"replica{n}")
        settings = Settings.from_env(corpus_dir=SMALL_CORPUS, index_dir=root / "index", home=root / "home",
                                     database_url=url)
        coach = Coach(settings, log=lambda line: None, trusted_header=HEADER)
        server = served(coach)
        _, local = server.__enter__()
        coaches.append(coach)
        servers.append(server)
        urls.append(local)
    yield coaches, urls, url
    for coach, server in zip(coaches, servers):
        server.__exit__(None, None, None)
        coach.ingest_worker.close()


def as_user(url: str, name: str) -> Client:
    return Client(url, headers={HEADER: name}, verbose=False)


def test_an_interview_started_on_one_replica_is_answered_on_the_other(replicas):
    coaches, (one, two), database = replicas
    token, first = as_user(one, "alice").predict(topics=["normalization"], questions=2, api_name="/interview_start")
    seen, answers = {first["seq"]}, 0
    for n in range(6):  # alternate replicas, as a load balancer without sticky sessions would
        replica = (two, one)[n % 2]
        result, nxt = as_user(replica, "alice").predict(token, "BN用小批量的均值和方差标准化,再用γ和β缩放平移。",
                                                        api_name="/interview_answer")
        answers += 1
        assert result["score"] is not None
        if nxt is None:
            break
        assert nxt["seq"] not in seen  # no question asked twice, none lost
        seen.add(nxt["seq"])
    markdown, report = as_user(one, "alice").predict(token, api_name="/interview_report")
    assert report["answers"] == answers
    with pytest.raises(AppError):  # another user cannot use alice's token on either replica
        as_user(two, "bob").predict(token, api_name="/interview_report")

    with History(database, user=coaches[0].space("alice").settings.user) as history:
        (session,) = history.list_sessions()
        assert session.status == "finished" and session.answers == answers
        turns = history.turns(session.id)
        assert [t.seq for t in turns] == list(range(1, answers + 1)) and all(t.answered for t in turns)


def test_a_users_upload_on_one_replica_answers_them_on_the_other(replicas):
    coaches, (one, two), database = replicas
    report = coaches[0].space("carol").add_documents([NOTES])  # the upload worker writes the rows
    assert report.added == {"offbank_notes.md": 4}, report
    text, answer = as_user(two, "carol").predict(NERF, api_name="/ask")
    assert answer["grounded"] and answer["sources"][0]["source"] == "offbank_notes.md", text
    text, answer = as_user(two, "dave").predict(NERF, api_name="/ask")
    assert all(s["source"] != "offbank_notes.md" for s in answer["sources"]), text

    # nothing of carol's is on either replica's disk: her documents are rows
    for coach in coaches:
        assert coach.kb.sources() == {}
        assert not (coach.space("carol").settings.home / "index").exists()
    # removing on the second replica is seen by the first within a second
    assert coaches[1].space("carol").remove_document("offbank_notes.md") == 4
    import time

    time.sleep(1.1)
    assert coaches[0].space("carol").kb.sources() == {}


def test_accounts_in_the_database_sign_in_on_every_replica(replicas, tmp_path):
    from coach.accounts import DatabaseUsers

    coaches, _, database = replicas
    users = DatabaseUsers(database)
    users.add("erin", "erin-pass-12")
    for n, coach in enumerate(coaches):  # the same engines, now serving with a login page instead of the header
        coach.accounts, coach.trusted_header = DatabaseUsers(database), None
        try:
            with served(coach) as (_, local):
                client = Client(local, auth=("erin", "erin-pass-12"), verbose=False)
                token, _ = client.predict(topics=["normalization"], questions=1, api_name="/interview_start")
                assert len(token) >= 32
                with pytest.raises(Exception):  # noqa: B017 - gradio_client's refused login
                    Client(local, auth=("erin", "wrong-password"), verbose=False)
        finally:
            coach.accounts, coach.trusted_header = None, HEADER
    with History(database, user=coaches[0].space("erin").settings.user) as history:
        assert len(history.list_sessions()) == 2  # one interview started on each replica
