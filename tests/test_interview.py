"""A mock interview asks, grades, follows up once, remembers across sessions and plans the review."""

import json
import re
import threading
from datetime import timedelta

import pytest

from coach.errors import CoachError
from coach.grade import Grader
from coach.history import History, TurnRecord, utcnow
from coach.interview import (FOLLOW_UP_BELOW, InterviewConfig, InterviewReport, InterviewSession, choose_follow_up, due_items,
                             level_after)


@pytest.fixture
def db_path(history_at):
    """Every interview test runs against both backends: a SQLite file and PostgreSQL (conftest)."""
    return history_at


@pytest.fixture
def history(db_path):
    with History(db_path) as store:
        yield store


@pytest.fixture
def grader(small_kb):
    """Interview mechanics are tested with the rule-based score (the weighted point credit):
    the learned score model is calibrated on the real bank, not on this five-item fixture."""
    from coach.scoring import RULES

    return Grader(small_kb, model=RULES)


def strong(kb, item_id: str) -> str:
    """The bank's own reference answer: scores >= 8.5, above the follow-up line (FOLLOW_UP_BELOW)."""
    return kb.bank.get(item_id).answer


# Real answers that make one minor point and miss the rest: each scores between 0 and 7.
THIN = {
    "act-relu-vs-sigmoid": "ReLU计算简单,只要一次比较,而且输出是稀疏的。",
    "act-why-nonlinear": "加了激活函数之后网络可以做得更深。",
    "norm-bn-purpose": "BN的批统计量带有噪声,有一点正则化的效果。",
    "norm-bn-gamma-beta": "γ和β取特定值时可以恢复原来的激活。",
    "norm-bn-vs-ln": "Transformer处理的是长度可变的序列,所以一般用LN。",
}


def thin(kb, item_id: str) -> str:
    return THIN[item_id]


def start(kb, grader, history, seed=1, **config) -> InterviewSession:
    return InterviewSession.start(kb, grader, history, InterviewConfig(**config), seed=seed)


def pin_first(kb, history, item_id: str) -> dict:
    """Make ``item_id`` the only unseen item (the others were answered well, so not due): it is asked first."""
    for other in kb.bank.items.values():
        if other.id != item_id:
            history.review(other.id, other.topic, 9.5)
    item = kb.bank.get(item_id)
    return {"topics": (item.topic,), "difficulty": item.difficulty}


def run(session, answer) -> list:
    """Answer until the session ends; ``answer(question)`` gives the text."""
    results = []
    while not session.finished:
        results.append(session.answer(answer(session.current)))
    return results


# ---- choosing questions --------------------------------------------------------------------
@pytest.mark.parametrize("difficulty, seed", [("adaptive", 1), (1, 2), (2, 3), (3, 4)],
                         ids=["adaptive", "easy", "medium", "hard-falls-back"])
def test_no_question_is_asked_twice_in_a_session(small_kb, grader, history, difficulty, seed):
    session = start(small_kb, grader, history, seed=seed, difficulty=difficulty, questions=5)
    run(session, lambda q: thin(small_kb, q.item_id) if q.kind != "probe" else "不知道")
    asked = [t.item_id for t in session.turns if t.kind != "probe"]
    assert session.finished and len(asked) == len(set(asked))
    assert sum(t.kind == "question" for t in session.turns) <= 5


@pytest.mark.parametrize("scores, level", [
    ([], 2), ([8.0], 3), ([9.0, 9.5, 10.0], 3), ([4.9], 1), ([0.0, 0.0, 0.0], 1),
    ([5.0], 2), ([7.9], 2), ([8.0, 4.0], 2), ([0.0, 8.5], 2),
], ids=["starts-at-2", "8-moves-up", "capped-at-3", "below-5-moves-down", "floored-at-1",
        "5-stays", "7.9-stays", "up-then-down", "down-then-up"])
def test_adaptive_difficulty_moves_with_each_main_score(scores, level):
    assert level_after(scores, "adaptive") == level


@pytest.mark.parametrize("answer, level, next_difficulty", [
    ("strong", 3, 2),  # no level-3 item in the fixture bank: the nearest level is asked
    ("skip", 1, 1),
], ids=["strong-answer-moves-up", "skip-moves-down"])
def test_an_adaptive_session_asks_at_the_new_level(small_kb, grader, history, answer, level, next_difficulty):
    session = start(small_kb, grader, history, questions=3)
    assert session.current.difficulty == 2 and session.level == 2
    item_id = session.current.item_id
    result = session.answer(strong(small_kb, item_id) if answer == "strong" else "跳过")
    assert not result.follow_up
    assert session.level == level and result.next.difficulty == next_difficulty


def test_a_fixed_difficulty_asks_only_that_level_while_it_lasts(small_kb, grader, history):
    session = start(small_kb, grader, history, difficulty=1, questions=3)
    results = run(session, lambda q: strong(small_kb, q.item_id))
    assert [r.question.difficulty for r in results] == [1, 1, 1]


@pytest.mark.parametrize("topics", [("nope",), ("normalization", "Activation")], ids=["unknown", "wrong-case"])
def test_an_unknown_topic_is_one_sentence_listing_the_valid_ids(small_kb, grader, history, topics):
    with pytest.raises(CoachError) as err:
        start(small_kb, grader, history, topics=topics)
    message = str(err.value)
    assert "normalization, activation" in message and message.count(". ") == 0 and message.endswith(".")


def test_the_same_seed_and_history_give_the_same_questions(small_kb, grader, tmp_path):
    orders = []
    for name in ("a", "b"):
        with History(tmp_path / f"{name}.sqlite3") as store:
            session = start(small_kb, grader, store, seed=42, questions=4, difficulty=1)
            orders.append([r.question.item_id for r in run(session, lambda q: strong(small_kb, q.item_id))])
    assert orders[0] == orders[1]


# ---- non-answers and time limits ---------------------------------------------------------------
@pytest.mark.parametrize("answer", ["跳过", "不知道", "", "   "], ids=["skip", "dont-know", "empty", "blank"])
def test_a_skip_scores_zero_shows_the_model_answer_and_is_due_again_soon(small_kb, grader, history, answer):
    session = start(small_kb, grader, history, questions=2)
    item_id = session.current.item_id
    result = session.answer(answer)
    assert result.score == 0.0 and result.skipped and not result.follow_up
    assert result.grade.model_answer == strong(small_kb, item_id)
    assert session.turns[0].score == 0.0
    assert history.cards()[item_id].due <= utcnow() + timedelta(days=1, minutes=1)  # FSRS "again": tomorrow


@pytest.mark.parametrize("elapsed, timed_out", [(10.0, False), (45.0, True)], ids=["in-time", "late"])
def test_a_late_answer_is_still_graded_but_marked(small_kb, grader, history, elapsed, timed_out):
    session = start(small_kb, grader, history, questions=1, time_limit=30)
    question = session.current
    assert question.time_limit == 30 and question.deadline == question.asked_at + timedelta(seconds=30)
    result = session.answer(strong(small_kb, question.item_id), elapsed=elapsed)
    assert result.score >= 8.5 and result.timed_out is timed_out
    report = session.report()
    assert [t.seq for t in report.timed_out] == ([1] if timed_out else [])
    assert ("## 超时作答" in report.to_markdown()) is timed_out


# ---- follow-ups ----------------------------------------------------------------------------------
def test_a_thin_answer_gets_the_items_follow_up_question(small_kb, grader, history):
    session = start(small_kb, grader, history, **pin_first(small_kb, history, "norm-bn-purpose"), questions=1)
    result = session.answer(thin(small_kb, "norm-bn-purpose"))
    assert 0 < result.score < 7 and result.follow_up
    assert (result.next.kind, result.next.item_id) == ("follow_up", "norm-bn-gamma-beta")
    last = session.answer(strong(small_kb, "norm-bn-gamma-beta"))
    assert last.finished and session.finished  # the follow-up did not count as a question
    assert [t.kind for t in session.turns] == ["question", "follow_up"]


def test_without_a_follow_up_item_the_probe_asks_about_the_heaviest_missed_point(small_kb, grader, history):
    session = start(small_kb, grader, history, **pin_first(small_kb, history, "act-relu-vs-sigmoid"), questions=1)
    item = small_kb.bank.get("act-relu-vs-sigmoid")
    result = session.answer(thin(small_kb, item.id))  # only the weight-1 point
    probe = result.next
    assert result.follow_up and probe.kind == "probe" and probe.item_id == item.id
    assert probe.point == item.key_points[0].point and f"「{probe.point}」" in probe.text
    follow = session.answer("sigmoid两端会饱和,导数最大只有0.25,层数深了连乘之后梯度消失。")
    graded_points = [p.point for p in follow.grade.covered + follow.grade.missing]
    assert graded_points == [probe.point] and follow.score >= 7  # graded on the probed point alone
    assert follow.grade.covered[0].source == f"bank:{item.id}" and session.finished


def test_a_strong_answer_gets_no_follow_up(small_kb, grader, history):
    session = start(small_kb, grader, history, **pin_first(small_kb, history, "norm-bn-purpose"), questions=1)
    result = session.answer(strong(small_kb, "norm-bn-purpose"))
    assert result.score >= FOLLOW_UP_BELOW and not result.follow_up and result.finished


@pytest.mark.parametrize("asked, expected", [
    (set(), ("follow_up", "act-relu-vs-sigmoid")),
    ({"act-relu-vs-sigmoid"}, ("probe", "act-why-nonlinear")),
], ids=["listed-follow-up", "follow-up-already-asked-so-probe"])
def test_the_follow_up_is_an_unasked_listed_item_else_a_probe(small_kb, grader, asked, expected):
    item = small_kb.bank.get("act-why-nonlinear")
    grade = grader.grade(thin(small_kb, item.id), item_id=item.id)
    follow_up = choose_follow_up(item, grade, small_kb.bank, asked | {item.id})
    assert (follow_up.kind, follow_up.item_id) == expected


@pytest.mark.parametrize("answer", ["strong", "empty"], ids=["strong", "empty"])
def test_no_follow_up_after_a_strong_or_empty_answer(small_kb, grader, answer):
    item = small_kb.bank.get("act-why-nonlinear")
    grade = grader.grade(item.answer if answer == "strong" else "", item_id=item.id)
    assert choose_follow_up(item, grade, small_kb.bank, {item.id}) is None


# ---- memory: resume and reviews -------------------------------------------------------------------
@pytest.mark.parametrize("first_answer, pending_kind", [("strong", "question"), ("thin", "follow_up")],
                         ids=["after-a-main-answer", "with-a-follow-up-pending"])
def test_an_interrupted_session_resumes_where_it_stopped(small_kb, grader, db_path, first_answer, pending_kind):
    history = History(db_path)
    session = start(small_kb, grader, history, **pin_first(small_kb, history, "norm-bn-purpose"), questions=2)
    text = strong(small_kb, "norm-bn-purpose") if first_answer == "strong" else thin(small_kb, "norm-bn-purpose")
    first = session.answer(text)
    session_id, pending = session.id, session.current
    del session  # the process dies: nothing but the file survives
    history.close()

    resumed = InterviewSession.resume(small_kb, Grader(small_kb), History(db_path), session_id)
    assert [(t.item_id, t.score) for t in resumed.turns] == [("norm-bn-purpose", first.score)]
    current = resumed.current
    assert (current.seq, current.kind, current.item_id) == (2, pending_kind, pending.item_id)
    assert current.text == pending.text
    run(resumed, lambda q: strong(small_kb, q.item_id))
    assert resumed.finished and sum(t.kind == "question" for t in resumed.turns) == 2
    assert len({t.item_id for t in resumed.turns}) == len(resumed.turns)


@pytest.mark.parametrize("stop_first", [True, False], ids=["stopped", "finished"])
def test_a_session_that_is_over_cannot_be_resumed(small_kb, grader, history, stop_first):
    session = start(small_kb, grader, history, questions=1)
    if stop_first:
        session.stop()
    else:
        session.answer(strong(small_kb, session.current.item_id))
    with pytest.raises(CoachError, match="already over"):
        InterviewSession.resume(small_kb, grader, history, session.id)
    with pytest.raises(CoachError, match="coach history"):
        InterviewSession.resume(small_kb, grader, history, "20000101-000000-abcdef")


def test_two_sessions_at_once_on_one_file_both_complete(small_kb, db_path):
    History(db_path).close()
    barrier, outcome, errors = threading.Barrier(2), {}, []

    def interview(seed: int) -> None:
        try:
            with History(db_path) as store:
                session = start(small_kb, Grader(small_kb), store, seed=seed, questions=3)
                barrier.wait()
                outcome[seed] = (session.id, run(session, lambda q: thin(small_kb, q.item_id)))
        except Exception as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=interview, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(outcome) == 2
    with History(db_path) as store:
        if store.dialect == "sqlite":
            assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for session_id, results in outcome.values():
            turns = store.turns(session_id)
            assert len(turns) == len(results) and all(t.answered for t in turns)
            assert [t.score for t in turns] == [r.score for r in results]
            assert store.session(session_id).status == "finished"


@pytest.mark.parametrize("questions, reviews_first", [(4, 2), (2, 1)], ids=["two-of-four", "one-of-two"])
def test_missed_questions_come_back_first_when_due_for_at_most_half(small_kb, grader, history, questions,
                                                                    reviews_first):
    first = start(small_kb, grader, history, seed=5, questions=2, difficulty=2)
    missed = [r.question.item_id for r in run(first, lambda q: "不知道")]  # both level-2 items
    assert not due_items(history, small_kb.bank)  # not due yet: "again" waits a minute
    tomorrow = utcnow() + timedelta(days=1)
    assert [d.item.id for d in due_items(history, small_kb.bank, now=tomorrow)] == missed

    config = InterviewConfig(questions=questions, difficulty=1)  # reviews ignore the level; new level-1 items exist
    later = InterviewSession.start(small_kb, grader, history, config, seed=6, now=tomorrow)
    asked = [r.question.item_id for r in run(later, lambda q: strong(small_kb, q.item_id))]
    assert asked[:reviews_first] == missed[:reviews_first]
    assert not set(asked[reviews_first:]) & set(missed)  # the rest are new questions


def test_due_items_follow_the_chosen_topics(small_kb, history):
    now = utcnow()
    history.review("norm-bn-purpose", "normalization", 0.0, now=now)
    history.review("act-why-nonlinear", "activation", 0.0, now=now)
    later = now + timedelta(days=1, hours=1)
    assert [d.item.id for d in due_items(history, small_kb.bank, ("activation",), now=later)] == ["act-why-nonlinear"]
    assert len(due_items(history, small_kb.bank, now=later)) == 2


def test_a_review_session_asks_only_due_items(small_kb, grader, history):
    history.review("norm-bn-vs-ln", "normalization", 2.0, now=utcnow() - timedelta(days=2))
    session = start(small_kb, grader, history, questions=5, review_only=True)
    results = run(session, lambda q: strong(small_kb, q.item_id))
    assert [r.question.item_id for r in results] == ["norm-bn-vs-ln"]
    with pytest.raises(CoachError, match="nothing is due"):
        start(small_kb, grader, history, review_only=True)


# ---- the report ------------------------------------------------------------------------------------
def test_the_report_sums_up_scores_topics_weak_points_and_reviews(small_kb, grader, history, tmp_path):
    session = start(small_kb, grader, history, **pin_first(small_kb, history, "norm-bn-purpose"), questions=1)
    session.answer(thin(small_kb, "norm-bn-purpose"))  # follow-up: norm-bn-gamma-beta
    session.answer("跳过")
    report = session.report()
    scores = [t.score for t in report.turns]
    assert report.overall == round(sum(scores) / 2, 1) and report.questions == 1 and len(report.turns) == 2
    assert report.topic_scores() == {"normalization": (report.overall, 2)}
    weakest = report.weakest_points()
    assert [w.weight for w in weakest] == sorted((w.weight for w in weakest), reverse=True)
    assert weakest[0].sources[0].startswith("bank:norm-bn-")
    assert {r.item_id for r in report.review} == {"norm-bn-purpose", "norm-bn-gamma-beta"}
    # both missed, so both come back tomorrow (learning steps of one day: interview practice, not flashcards)
    assert utcnow() + timedelta(hours=23) <= report.review[0].due <= report.review[1].due
    assert report.review[1].due <= utcnow() + timedelta(days=1, minutes=1)

    markdown = report.to_markdown()
    for heading in ("# 模拟面试报告", "## 总分", "## 各主题得分", "## 逐题回顾", "## 最薄弱的要点",
                    "## 接下来要复习的题目", "你的回答", "漏掉的要点", "参考答案"):
        assert heading in markdown
    assert len(re.findall(r"\d+\.\d/10", markdown)) >= 4 and "| 归一化 |" in markdown
    assert "normalization" not in markdown and "norm-bn-" not in markdown  # names, not internal ids
    assert thin(small_kb, "norm-bn-purpose") in markdown  # the answer given
    assert json.loads(json.dumps(report.to_json()))["answers"] == 2
    path = report.save(tmp_path / "reports")
    assert re.fullmatch(r"面试报告-\d{4}-\d{2}-\d{2}-\d{4}-normalization\.md", path.name)
    assert path.read_text(encoding="utf-8") == markdown
    assert report.save(tmp_path / "reports") == path  # saving again overwrites its own report
    pdf = report.save(tmp_path / "reports", ".pdf")
    assert pdf.name == path.name.replace(".md", ".pdf") and pdf.read_bytes().startswith(b"%PDF")


def missed(point: str, weight: int) -> dict:
    return {"point": point, "weight": weight, "source": "bank:x"}


def test_weakest_points_sort_by_weight_then_how_often_they_were_missed():
    now = utcnow()
    grades = [[missed("A", 1), missed("B", 2)], [missed("A", 1), missed("C", 2)], [missed("A", 1), missed("C", 2)]]
    turns = [TurnRecord("s", n, "question", "x", "t", 1, "q", None, now, "a", 1.0, "需加强", {"missing": g}, 1.0,
                        False, now) for n, g in enumerate(grades, 1)]
    report = InterviewReport("s", now, now, "finished", {}, turns, [])
    assert [(w.point, w.count) for w in report.weakest_points()] == [("C", 2), ("B", 1), ("A", 3)]


def test_a_report_with_no_answers_says_so(small_kb, grader, history):
    session = start(small_kb, grader, history, questions=2)
    session.stop()
    report = session.report()
    assert report.overall is None and "本场没有作答" in report.to_markdown() and report.status == "stopped"
