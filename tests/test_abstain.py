"""An answer is about the question asked, or there is none; the user's documents count as knowledge."""

import json
import shutil

import pytest

from coach.chat import ChatEngine
from coach.config import ROOT, Settings
from coach.grade import Grader
from coach.knowledge import KnowledgeBase
from coach.relevance import ANSWER

from conftest import FIXTURES

NOTES = FIXTURES / "docs" / "offbank_notes.md"  # topics the bank does not cover
SEED_003 = ROOT.parent / "shared" / "seeds" / "003_7b40eaba8e657ec8.txt"
OFF_BANK = {
    "nerf": ("NeRF的原理是什么?", "NeRF"),
    "kan": ("KAN网络和MLP有什么区别?", "KAN"),
    "pointnet": ("PointNet怎么处理点云的无序性?", "PointNet"),
}


@pytest.fixture
def kb_with_notes(real_index_dir, tmp_path):
    """The real bank's index copied, then the notes ingested into the copy (the bank is not re-embedded)."""
    shutil.copytree(real_index_dir, tmp_path / "index")
    kb = KnowledgeBase(Settings.from_env(corpus_dir=ROOT / "corpus", index_dir=tmp_path / "index"))
    assert kb.ingest([NOTES]).added == {"offbank_notes.md": 4}  # the intro and three Q&A pairs
    return kb


@pytest.mark.parametrize("question, term", OFF_BANK.values(), ids=OFF_BANK)
def test_a_question_the_bank_does_not_answer_gets_no_answer_only_maybe_related(real_kb, question, term):
    answer = ChatEngine(real_kb).answer(question)
    assert not answer.grounded and answer.relevance == 0
    assert "没有这个问题的答案" in answer.text or "没有找到" in answer.text
    assert all(s.role == "related" and s.relevance < ANSWER for s in answer.sources)


@pytest.mark.parametrize("question, term", OFF_BANK.values(), ids=OFF_BANK)
def test_the_same_question_is_answered_from_an_uploaded_note(kb_with_notes, question, term):
    answer = ChatEngine(kb_with_notes).answer(question)
    assert answer.grounded and answer.sources[0].kind == "doc" and answer.sources[0].source == "offbank_notes.md"
    assert term in answer.sources[0].title and answer.sources[0].relevance >= ANSWER
    assert "出自你的资料 offbank_notes.md" in answer.text and "[1]" in answer.text


@pytest.mark.parametrize("question, term", OFF_BANK.values(), ids=OFF_BANK)
def test_grading_an_off_bank_question_gives_no_score_then_grades_against_the_note(real_kb, kb_with_notes, question, term):
    answer = f"{term}这个我了解一些，大概是用一些技巧让大模型训练得更好。"
    assert Grader(real_kb).grade(answer, question=question).score is None
    grade = Grader(kb_with_notes).grade(answer, question=question)
    assert grade.score is not None and grade.basis == "document"
    assert all(p.source == "offbank_notes.md" for p in grade.covered + grade.missing)


def test_a_follow_up_never_returns_the_previous_concepts_answer(real_kb):
    answer = ChatEngine(real_kb).answer("那LN呢?", previous="BN层为什么要加γ和β?")
    assert all(s.item_id != "norm-bn-gamma-beta" for s in answer.sources)
    assert not answer.grounded or "LN" in answer.query or "层归一化" in answer.query
    if answer.grounded:
        assert answer.sources[0].item_id == "norm-bn-vs-ln"


def test_a_follow_up_about_a_concept_the_bank_lacks_abstains(real_kb):
    answer = ChatEngine(real_kb).answer("那NeRF呢?", previous="BN层为什么要加γ和β?")
    assert not answer.grounded


def test_a_sample_page_answer_is_cited_beside_the_bank_answer(real_index_dir, tmp_path):
    shutil.copytree(real_index_dir, tmp_path / "index")
    kb = KnowledgeBase(Settings.from_env(corpus_dir=ROOT / "corpus", index_dir=tmp_path / "index"))
    kb.ingest([SEED_003])
    answer = ChatEngine(kb).answer("批归一化为什么能加速训练？缩放和平移参数有什么用")
    assert answer.grounded
    assert any(s.kind == "doc" and s.source == SEED_003.name and "伽马" in s.title for s in answer.sources)


def test_every_hit_carries_a_relevance_in_0_1_and_the_lists_are_apart(kb_with_notes):
    found = kb_with_notes.lookup("NeRF的体渲染是怎么算的")
    assert found.docs and found.bank
    assert all(0 <= h.relevance <= 1 for h in found.bank + found.docs)
    assert [h.relevance for h in found.docs] == sorted((h.relevance for h in found.docs), reverse=True)
    assert found.answer.kind == "doc" and all(not h.answers for h in found.bank)


def test_an_interview_over_a_sample_page_asks_its_25_questions(real_index_dir, tmp_path):
    from coach.history import History
    from coach.interview import InterviewConfig, InterviewSession

    shutil.copytree(real_index_dir, tmp_path / "index")
    kb = KnowledgeBase(Settings.from_env(corpus_dir=ROOT / "corpus", index_dir=tmp_path / "index"))
    kb.ingest([SEED_003])
    topic = f"doc:{SEED_003.name}"
    assert topic in kb.catalog.topics and "docs" in kb.catalog.topics
    history = History(tmp_path / "history.sqlite3")
    session = InterviewSession.start(kb, Grader(kb), history, InterviewConfig(topics=("docs",), questions=25))
    asked = []
    while not session.finished:
        question = session.current
        asked.append(question)
        item = kb.catalog.get(question.item_id)
        session.answer(item.answer)  # the page's own answer to its own question
    main = [q for q in asked if q.kind == "question"]
    assert len(main) == 25 and len({q.item_id for q in main}) == 25
    assert all(kb.catalog.get(q.item_id).topic == topic for q in main)
    report = session.report()
    assert report.questions == 25 and report.overall is not None


def test_relevance_weights_are_checked_on_load_and_each_kind_has_its_own(tmp_path):
    from coach import relevance as rel
    from coach.errors import CoachError

    model = rel.RelevanceModel.load()
    assert set(model.weights) == {"bank", "doc"} and model.weights["bank"] != model.weights["doc"]
    features = dict.fromkeys(rel.FEATURES, 0.5)
    assert model.probability(features, "bank") != model.probability(features, "doc")
    old = tmp_path / "relevance.json"
    old.write_text(json.dumps({"format": "coach-relevance", "version": 1, "features": list(rel.FEATURES),
                               "weights": [0.0] * len(rel.FEATURES), "bias": 0.0}))
    with pytest.raises(CoachError, match="coach eval abstain --fit"):
        rel.RelevanceModel.load(old)
