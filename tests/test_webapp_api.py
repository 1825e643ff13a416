"""The web app's named API, driven over HTTP with gradio_client against a real server on 127.0.0.1."""

from __future__ import annotations

import json

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from coach.errors import InputError
from coach.limits import MAX_UPLOAD_MB
from coach.webapp import ApiInterviews, countdown_markdown, highlighted_answer, message_for, parse_auth, serve

from tests.conftest import free_port, served


@pytest.fixture(scope="module")
def server(coach):
    with served(coach) as running:
        yield running


@pytest.fixture(scope="module")
def client(server) -> Client:
    return Client(server[1], verbose=False)


# ---- /ask ------------------------------------------------------------------------------------
def test_ask_returns_a_markdown_answer_with_its_sources(client):
    text, info = client.predict("BN层为什么要加γ和β?", api_name="/ask")
    assert "恢复原来的激活" in text and "[1]" in text
    assert info["grounded"] is True
    assert info["sources"][0]["item_id"] == "norm-bn-gamma-beta"
    assert info["sources"][0]["label"] == "题库 · norm-bn-gamma-beta"


def test_ask_marks_the_answer_and_what_is_only_maybe_related_with_a_relevance(client):
    _, info = client.predict("BN层为什么要加γ和β?", api_name="/ask")
    first, *rest = info["sources"]
    assert first["role"] == "answer" and first["relevance"] >= 0.5 and info["relevance"] == first["relevance"]
    assert all(0 <= s["relevance"] <= 1 for s in rest)
    assert all(s["role"] == "related" for s in rest if s["relevance"] < 0.5)


def test_ask_of_a_question_the_bank_lacks_shows_no_answer_only_maybe_related(client):
    text, info = client.predict("LoRA的秩r一般怎么选?", api_name="/ask")
    assert info["grounded"] is False and info["relevance"] == 0
    assert all(s["role"] == "related" for s in info["sources"])


def test_ask_reads_a_follow_up_in_the_light_of_the_previous_question(client):
    _, info = client.predict("那LN呢?", "BN和LN有什么区别?", api_name="/ask")
    assert info["sources"][0]["item_id"] == "norm-bn-vs-ln"


def test_ask_of_nonsense_says_nothing_was_found(client):
    text, info = client.predict("红烧肉怎么做才好吃", api_name="/ask")
    assert "没有找到" in text
    assert info == {**info, "grounded": False, "sources": []}


@pytest.mark.parametrize("question, message", [("问" * 501, "501 个字符，请控制在 500 个字符以内"),
                                               ("   ", "问题是空的")], ids=["too-long", "empty"])
def test_a_bad_question_gets_one_sentence_not_a_traceback(client, question, message):
    with pytest.raises(AppError, match=message) as caught:
        client.predict(question, api_name="/ask")
    assert "Traceback" not in str(caught.value) and str(caught.value).count("。") == 1


# ---- /grade ------------------------------------------------------------------------------------
def test_grade_returns_a_score_with_covered_and_missed_points(client):
    grade = client.predict(question_id="norm-bn-purpose", answer="BN用小批量的均值和方差把激活标准化,可以用更大的学习率,收敛更快。",
                           api_name="/grade")
    assert 4 <= grade["score"] <= 10 and grade["verdict"]
    assert grade["covered"] and grade["missing"]
    assert grade["item_id"] == "norm-bn-purpose"


def test_grade_matches_a_free_text_question_to_the_bank(client):
    grade = client.predict(question="BN层的作用是什么?", answer="BN用均值和方差做标准化。", api_name="/grade")
    assert grade["item_id"] == "norm-bn-purpose" and grade["score"] is not None


def test_an_empty_answer_gets_the_no_answer_message(client):
    grade = client.predict(question_id="norm-bn-purpose", answer="", api_name="/grade")
    assert grade["score"] is None and grade["verdict"] == "未作答"
    assert "没有检测到作答内容" in grade["feedback"][0]


def test_grade_without_a_question_says_what_to_do(client):
    with pytest.raises(AppError, match="请先选择一道题库题目"):
        client.predict(answer="BN用均值和方差做标准化。", api_name="/grade")


# ---- interviews ------------------------------------------------------------------------------------
def run_interview(client, answers: list[str]) -> tuple[str, list[dict]]:
    token, question = client.predict(topics=["normalization"], difficulty="adaptive", questions=2,
                                     api_name="/interview_start")
    asked = [question]
    for answer in answers:
        result, question = client.predict(token, answer, api_name="/interview_answer")
        assert result["verdict"]
        if question is None:
            break
        asked.append(question)
    return token, asked


def test_an_interview_runs_from_start_to_report(client):
    token, first = client.predict(topics=["normalization"], questions=2, api_name="/interview_start")
    assert len(token) >= 32 and first["topic"] == "normalization" and first["text"]
    result, second = client.predict(token, "BN用小批量均值和方差标准化激活,让训练更稳定。", api_name="/interview_answer")
    assert result["score"] is not None and "covered" in result["grade"]
    result, _ = client.predict(token, "不知道", api_name="/interview_answer")
    assert result["verdict"] == "跳过"
    markdown, report = client.predict(token, api_name="/interview_report")
    assert markdown.startswith("# 模拟面试报告")
    assert report["answers"] == 2 and "normalization" in report["topics"]


def test_two_clients_interviews_do_not_mix(server):
    alice, bob = Client(server[1], verbose=False), Client(server[1], verbose=False)
    token_a, _ = run_interview(alice, ["BN用均值和方差标准化激活,可以用更大的学习率。"])
    token_b, _ = run_interview(bob, ["不知道", "不知道"])
    assert token_a != token_b
    _, report_a = alice.predict(token_a, api_name="/interview_report")
    _, report_b = bob.predict(token_b, api_name="/interview_report")
    assert [t["answer"] for t in report_a["turns"]] == ["BN用均值和方差标准化激活,可以用更大的学习率。"]
    assert {t["answer"] for t in report_b["turns"]} == {"不知道"}
    assert report_a["session_id"] != report_b["session_id"]


def test_an_unknown_token_is_refused_with_one_sentence(client):
    with pytest.raises(AppError, match="这场面试已经结束或不存在"):
        client.predict("not-a-token", "答案", api_name="/interview_answer")


def test_an_api_interview_survives_a_restart_of_the_token_store(client, coach):
    token, first = client.predict(["normalization"], "adaptive", 2, 0, False, api_name="/interview_start")
    coach.interviews = ApiInterviews(coach.settings)  # nothing kept in memory: tokens live in the history file
    turn, _ = client.predict(token, "BN把激活标准化到均值0方差1,再用γ和β缩放平移。", api_name="/interview_answer")
    assert turn["score"] is not None


def test_many_interview_starts_by_one_client_never_evict_another_clients_interview(coach):
    from coach.history import History
    from coach.interview import InterviewConfig
    from coach.webapp import API_SESSIONS_PER_CLIENT

    store = ApiInterviews(coach.settings)
    config = InterviewConfig(("normalization",), questions=1)
    victim = store.add(coach.start_interview(config)[0], "addr:10.0.0.2")
    mine = [store.add(coach.start_interview(config)[0], "addr:10.0.0.1") for _ in range(API_SESSIONS_PER_CLIENT + 3)]
    with History.open(coach.settings) as history:
        status = {t: history.session(store.get(t)).status for t in [victim, *mine]}
    assert status[victim] == "active"
    assert [status[t] for t in mine[:3]] == ["stopped"] * 3  # the flooding client's own oldest, closed in the history
    assert all(status[t] == "active" for t in mine[3:])


def test_an_abandoned_interview_is_closed_in_the_history_not_left_active(coach):
    from datetime import timedelta

    from coach.history import History, utcnow
    from coach.interview import InterviewConfig
    from coach.webapp import INTERVIEW_IDLE

    session_id, _ = coach.start_interview(InterviewConfig(("normalization",), questions=1))
    with History.open(coach.settings) as history:
        assert history.close_abandoned(INTERVIEW_IDLE, utcnow()) == 0
        assert history.close_abandoned(INTERVIEW_IDLE, utcnow() + INTERVIEW_IDLE + timedelta(minutes=1)) >= 1
        record = history.session(session_id)
        assert record.status == "stopped" and record.finished_at is not None
        assert all(t.answered for t in history.turns(session_id))


@pytest.mark.parametrize("args, api, message", [
    (("BN的作用", "上" * 2000, None), "/ask", "上一个问题"),
    (("\ud800BN的作用\udfff", "", None), "/ask", None),
    ((12345, "", None), "/ask", "输入必须是文字"),
    (("BN的作用", "", [{"role": "system", "content": "x"}]), "/ask", "history"),
    (("", "答案", ["norm-bn-purpose"]), "/grade", "输入必须是文字"),
    ((["normalization"], "adaptive", 2, float("nan"), False), "/interview_start", "数值必须在"),
    ((["normalization"], "adaptive", 2, 1e308 * 10, False), "/interview_start", "数值必须在"),
    (("x" * 5000, "答案"), "/interview_answer", "输入"),
], ids=["long-previous", "lone-surrogates", "number-as-question", "bad-history", "list-as-id", "nan-time-limit", "inf-time-limit",
        "long-token"])
def test_bad_api_input_gets_one_sentence_never_a_traceback(server, args, api, message):
    event, payload = raw_call(server[1], api, list(args))
    payload = json.dumps(json.loads(payload), ensure_ascii=False) if payload else payload
    if message is None:  # lone surrogates are replaced, and the question is answered
        assert event == "complete" and json.loads(payload)[0][1]["sources"]
        return
    assert event == "error" and message in payload and "Traceback" not in payload


def raw_call(url: str, api: str, data: list) -> tuple[str, str]:
    """One call of a named endpoint over Gradio's HTTP API with the JSON written by hand (ASCII
    escapes, so lone surrogates and NaN go through as a hostile client would send them)."""
    import httpx

    body = json.dumps({"data": data}, ensure_ascii=True, allow_nan=True)
    started = httpx.post(f"{url}gradio_api/call{api}", content=body, headers={"content-type": "application/json"})
    event_id = started.json()["event_id"]
    event, payload = "", ""
    with httpx.stream("GET", f"{url}gradio_api/call{api}/{event_id}", timeout=60) as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = line.split(":", 1)[1].strip()
                break
    return event, payload


def test_wrong_passwords_are_throttled_per_client(coach):
    import httpx

    app, url = serve(port=free_port(), auth="coach:s3cret", coach=coach, prevent_thread_lock=True, quiet=True)
    try:
        codes = [httpx.post(url + "login", data={"username": "coach", "password": f"guess{n}"}).status_code
                 for n in range(6)]
        assert codes[:5] == [400] * 5 and codes[5] == 429
        right = httpx.post(url + "login", data={"username": "coach", "password": "s3cret"})
        assert right.status_code == 429 and "wait" in right.json()["detail"]
    finally:
        app.close()


# ---- safe defaults ------------------------------------------------------------------------------------
def test_the_app_binds_to_localhost_with_an_upload_limit_and_a_bounded_queue(server):
    app, url = server
    assert url.startswith("http://127.0.0.1:")
    assert app.max_file_size == MAX_UPLOAD_MB * 1024 * 1024
    assert app._queue.max_size == 64 and app._queue.default_concurrency_limit == 4
    assert not app.share


def test_a_password_keeps_out_clients_without_it(coach):
    app, url = serve(port=free_port(), auth="coach:s3cret", coach=coach, prevent_thread_lock=True, quiet=True)
    try:
        with pytest.raises(Exception):
            Client(url, verbose=False)
        text, _ = Client(url, auth=("coach", "s3cret"), verbose=False).predict("BN的作用", api_name="/ask")
        assert "BN" in text
    finally:
        app.close()


@pytest.mark.parametrize("value, expected", [("", None), ("me:pw", ("me", "pw")), ("me:p:w", ("me", "p:w"))],
                         ids=["none", "user-pass", "colon-in-password"])
def test_auth_settings_are_parsed(value, expected):
    assert parse_auth(value) == expected


@pytest.mark.parametrize("value", ["justuser", ":pw", "me:"], ids=["no-colon", "no-user", "no-password"])
def test_a_malformed_auth_setting_is_one_sentence(value):
    with pytest.raises(InputError, match="user:password"):
        parse_auth(value)


def test_engine_messages_are_shown_in_chinese_and_unknown_ones_as_they_are():
    assert message_for(InputError("The answer has 6000 characters; keep it under 5000.")) == \
        "回答有 6000 个字符，请控制在 5000 个字符以内。"
    assert message_for(InputError("notes.pdf is password-protected; save an unprotected copy.")).startswith("notes.pdf 设置了密码")
    assert message_for(InputError("Something new happened.")) == "Something new happened."
    assert message_for(InputError("No documents with questions are in the knowledge base yet; upload a Q&A page "
                                  "first.")).startswith("知识库里还没有带问答的资料")


def test_covered_and_wrong_sentences_are_marked_in_the_answer(coach):
    answer = "BN用均值和方差把激活标准化。今天天气不错。推理时也用当前批次的均值和方差。"
    grade = coach.grader.grade(answer, item_id="norm-bn-purpose")
    pieces = highlighted_answer(answer, grade)
    assert "".join(text for text, _ in pieces) == answer
    labels = dict(pieces)
    assert labels["BN用均值和方差把激活标准化。"] == "命中要点"
    assert labels["推理时也用当前批次的均值和方差。"] == "误区"


@pytest.mark.parametrize("left, shown", [(185, "03:05"), (0.2, "00:01"), (-3, "时间到")], ids=["minutes", "last-second", "over"])
def test_the_interview_countdown_shows_minutes_and_seconds_then_times_up(left, shown):
    assert shown in countdown_markdown({"deadline": 1000.0 + left}, now=1000.0)
    assert countdown_markdown({"deadline": None}) == ""


def test_uploads_are_kept_for_a_rebuild_and_forgotten_when_removed(coach, tmp_path):
    notes = tmp_path / "kiwi-notes.md"
    notes.write_text("## 猕猴桃正则化是什么?\n\n猕猴桃正则化在每层输出上加一个绒毛噪声项。\n", encoding="utf-8")
    report = coach.add_documents([notes, tmp_path / "model.ckpt"])
    assert report.added == {"kiwi-notes.md": 1} and "model.ckpt" in report.errors
    counts = coach.rebuild()
    assert counts["doc_units"] == 1 and "kiwi-notes.md" in coach.kb.sources()
    assert coach.remove_document("kiwi-notes.md") == 1
    assert coach.kb.sources() == {} and not any(coach.documents_dir.rglob("kiwi-notes.md"))


def test_an_upload_error_names_the_file_once():
    from coach.knowledge import IngestReport
    from coach.webapp import report_markdown

    text = report_markdown(IngestReport(errors={"empty.md": "empty.md is empty; add some text to it or choose another file."}))
    assert text.count("empty.md") == 1 and "空文件" in text
