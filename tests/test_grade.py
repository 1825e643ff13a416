"""Grades are stable, explainable and hard to game."""

import pytest

from coach.errors import BankError, InputError
from coach.grade import Grader

ITEM = "norm-bn-gamma-beta"
GOOD = ("只做标准化会把每层输出强行变成均值0方差1,限制了网络的表达能力。"
        "γ和β是可学习的缩放和平移参数,网络通过训练自己决定最合适的分布。"
        "当γ等于原来的标准差、β等于原来的均值时可以恢复原来的激活,所以加BN至少不会更差。")
PARTIAL = "因为标准化成均值0方差1之后会限制网络的表达能力,所以要加两个参数调整一下。"


@pytest.fixture
def grader(small_kb):
    return Grader(small_kb)


def test_a_complete_answer_scores_high_and_cites_its_sentences(grader):
    grade = grader.grade(GOOD, item_id=ITEM)
    # the score model is calibrated on blind answers, where complete answers are mostly longer:
    # a concise complete one lands in 良好 (docs/benchmarks.md), well above a partial one
    assert grade.score >= 7.0 and grade.verdict in ("良好", "优秀")
    assert grade.score >= grader.grade(PARTIAL, item_id=ITEM).score + 2
    assert len(grade.covered) == 3 and not grade.missing
    assert all(p.evidence and p.evidence in GOOD for p in grade.covered)
    assert grade.sources[0]["item_id"] == ITEM and "恢复原来的激活" in grade.model_answer


def test_a_partial_answer_scores_in_between_and_lists_what_is_missing(grader):
    grade = grader.grade(PARTIAL, item_id=ITEM)
    assert 2.0 <= grade.score <= 7.0
    assert grade.missing and all(p.source == f"bank:{ITEM}" for p in grade.missing)
    assert any(line.startswith("补充要点") for line in grade.feedback)


def test_the_same_input_always_gets_the_same_grade(grader, small_kb):
    first = grader.grade(PARTIAL, item_id=ITEM).to_json()
    again = Grader(small_kb).grade(PARTIAL, item_id=ITEM).to_json()
    assert first == again


@pytest.mark.parametrize("answer, verdict", [("", "未作答"), ("   ", "未作答"), ("不知道", "跳过"), ("跳过", "跳过"),
                                             ("I don't know", "跳过")],
                         ids=["empty", "blank", "dont-know", "skip", "english-dont-know"])
def test_an_empty_answer_gets_a_message_not_a_score(grader, answer, verdict):
    grade = grader.grade(answer, item_id=ITEM)
    assert grade.score is None and grade.verdict == verdict  # "不知道" is a choice to skip, not a missing answer
    assert ("跳过" in grade.feedback[0]) == (verdict == "跳过")
    assert grade.flags == ["empty"] and grade.model_answer


def test_a_keyword_list_scores_at_most_4(grader):
    grade = grader.grade("γ, β, 可学习, 缩放, 平移, 表达能力, 恢复, 均值0方差1", item_id=ITEM)
    assert grade.score <= 4.0 and "keyword_only" in grade.flags


def test_repeating_the_question_scores_at_most_2(grader):
    grade = grader.grade("BN层为什么要加γ和β呢", item_id=ITEM)
    assert grade.score <= 2.0 and "repeat" in grade.flags


def test_an_off_topic_answer_scores_low(grader):
    grade = grader.grade("周末我喜欢去爬山,山上空气很好,回来再做一顿火锅。", item_id=ITEM)
    assert grade.score <= 1.0 and "off_topic" in grade.flags


def test_padding_with_unrelated_text_does_not_raise_the_score(grader):
    plain = grader.grade(PARTIAL, item_id=ITEM)
    padded = grader.grade(PARTIAL + "我平时喜欢打篮球和看电影。今天北京的天气很好,适合出门散步。", item_id=ITEM)
    assert padded.score <= plain.score
    assert "padded" in padded.flags


def test_stating_a_misconception_costs_points(grader):
    honest = grader.grade(GOOD, item_id=ITEM)
    wrong = grader.grade(GOOD + "另外,γ和β是人工设定的固定超参数,训练中不会改变。", item_id=ITEM)
    assert wrong.misconceptions and "可学习参数" in wrong.misconceptions[0].correction
    assert wrong.score <= honest.score - 1.5


@pytest.mark.parametrize("denial", [
    "注意γ和β不是人工设定的固定超参数。",
    "γ和β并非固定的超参数,而是学出来的。",
    "有人以为γ和β是人工设定的超参数，但其实不是，它们是可学习的。",
    "γ和β无需人工设定，也不是固定超参数。",
], ids=["bushi", "bingfei", "reported-then-denied", "wuxu"])
def test_denying_a_misconception_is_not_flagged(grader, denial):
    assert not grader.grade(GOOD + denial, item_id=ITEM).misconceptions


def test_a_misconception_in_the_other_order_of_a_swap_is_caught(small_kb):
    from dataclasses import replace

    from coach.bank import Misconception
    from coach.grade import Reference

    swap = Misconception("推理时用当前batch的统计量", (("推理", "测试"), ("当前batch", "当前批次")), "推理时用滑动平均。", "swap")
    ref = replace(Reference.from_item(small_kb.bank.get("norm-bn-purpose")), misconceptions=(swap,))
    grader = Grader(small_kb)
    assert grader.grade_reference(ref, "BN推理时用当前批次的均值方差做归一化。").misconceptions
    assert not grader.grade_reference(ref, "用当前批次的统计量是训练时的做法，推理时用滑动平均。").misconceptions


def test_every_flag_carries_the_sentence_that_raised_it(grader):
    grade = grader.grade(PARTIAL + "我平时喜欢打篮球和看电影。今天北京的天气很好,适合出门散步。", item_id=ITEM)
    assert grade.flags == ["padded"] and "篮球" in grade.flag_evidence["padded"]
    assert any("篮球" in line for line in grade.feedback)  # the candidate sees which sentence
    assert "padded" not in grader.grade(GOOD, item_id=ITEM).flags


def test_an_english_answer_is_graded_like_a_chinese_one(grader):
    english = ("Normalizing to zero mean and unit variance limits the representation power of the layer. "
               "Gamma and beta are learnable scale and shift parameters, so the network learns the best distribution. "
               "With gamma equal to the old std and beta to the old mean it can recover the identity, so BN never hurts.")
    assert grader.grade(english, item_id=ITEM).score >= 6.5


def test_a_free_text_question_is_matched_to_the_bank(grader):
    grade = grader.grade(GOOD, question="batchnorm里的gamma和beta是干嘛用的")
    assert grade.item_id == ITEM and grade.basis == "bank"


@pytest.mark.parametrize("question", ["推荐系统的用户画像怎么构建", "LoRA的原理是什么?", "MoE的负载均衡损失是做什么的"],
                         ids=["user-profile", "lora", "moe"])
def test_a_question_nothing_answers_gets_no_score_and_says_why(grader, question):
    grade = grader.grade("用户画像主要靠埋点数据和标签体系。LoRA用低秩矩阵。", question=question)
    assert grade.score is None and grade.basis == "none" and grade.item_id is None
    assert not grade.missing and "不打分" in grade.feedback[0]


def test_bad_inputs_get_one_sentence(grader):
    with pytest.raises(BankError, match="coach bank list"):
        grader.grade("x", item_id="no-such-item")
    with pytest.raises(InputError, match="under 5000"):
        grader.grade("很长" * 3000, item_id=ITEM)
    with pytest.raises(InputError, match="Give a question"):
        grader.grade("x")


@pytest.mark.parametrize("answer, flagged", [
    ("γ β 可学习 缩放 平移 恒等映射 表达能力", True),
    ("learnable, scale, shift, identity", True),
    ("γ和β是可学习的。它们负责缩放和平移。", False),
], ids=["spaced-zh-list", "english-list", "terse-but-real"])
def test_keyword_lists_are_told_from_terse_sentences(grader, answer, flagged):
    assert ("keyword_only" in grader.grade(answer, item_id=ITEM).flags) is flagged


def test_a_tautology_counts_as_repeating_the_question(grader):
    grade = grader.grade("γ和β就是γ和β,BN层加γ和β就是为了加上γ和β。", item_id=ITEM)
    assert "repeat" in grade.flags and grade.score <= 2.0


def test_a_follow_up_can_grade_against_a_subset_of_points(grader, small_kb):
    from dataclasses import replace

    from coach.grade import Reference

    full = Reference.from_item(small_kb.bank.get(ITEM))
    only_last = replace(full, key_points=full.key_points[-1:])
    grader.grade(GOOD, item_id=ITEM)  # fills the cache with all three points
    grade = grader.grade_reference(only_last, "当γ等于标准差、β等于均值时,BN可以恢复原来的激活,相当于恒等变换。")
    assert len(grade.covered) == 1 and not grade.missing and grade.score >= 8


PURPOSE = ("BN对每个batch内每个通道做标准化,减去均值除以标准差,缓解内部协变量偏移,"
           "让训练更快更稳定,允许更大的学习率,还有一定正则化作用。")
TWO_PART = "BN层的作用是什么,为什么要加γ和β?"


def test_a_question_that_asks_two_things_is_graded_on_both(grader):
    ref = grader.reference(question=TWO_PART)
    assert [p.item_id for p in ref.parts] == ["norm-bn-purpose", ITEM]
    one, other, both = (grader.grade(a, question=TWO_PART) for a in (GOOD, PURPOSE, PURPOSE + GOOD))
    # answering one part earns less than answering that part's own question, answering both the most
    assert one.score < grader.grade(GOOD, item_id=ITEM).score
    assert both.score >= max(one.score, other.score) + 1.0
    assert "合起来评分" in both.feedback[0] and {s["item_id"] for s in both.sources} == {"norm-bn-purpose", ITEM}
    assert {p.source for p in both.covered} == {"bank:norm-bn-purpose", f"bank:{ITEM}"}


def test_context_before_the_question_is_not_a_second_part(grader):
    assert not grader.reference(question="BN里,为什么要加γ和β?").parts


def test_a_neighbouring_item_s_misconception_is_caught_too(grader):
    # listed under norm-bn-gamma-beta, stated in an answer to norm-bn-purpose: still wrong
    grade = grader.grade(PURPOSE + "γ和β是人工设定的固定超参数,一般取1和0。", item_id="norm-bn-purpose")
    assert [m.claim for m in grade.misconceptions] == ["γ和β是人工设定的固定超参数"]
    assert grade.score < grader.grade(PURPOSE, item_id="norm-bn-purpose").score
    # and what an item's own reference says is never a neighbour's misconception for it
    assert not grader.grade(PURPOSE + "γ和β是可学习参数,通过反向传播更新。", item_id="norm-bn-purpose").misconceptions


def test_the_shipped_misconceptions_pass_their_probes(real_kb):
    import json

    from coach.config import ROOT
    from coach.grade import probe_problems, self_triggered

    bank, embedder = real_kb.bank, real_kb.embedder
    rows = [json.loads(line) for line in (ROOT / "corpus" / "eval" / "misconceptions" / "probes.jsonl")
            .read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 4000 and self_triggered(embedder, bank) == []
    assert probe_problems(embedder, bank, rows) == []
    # the check can fail: a correct sentence expected to fire, a wrong one expected quiet
    bad = [{"item_id": "norm-bn-gamma-beta", "text": "γ和β是可学习参数,通过反向传播更新。", "expect": "fire"},
           {"item_id": "norm-bn-gamma-beta", "text": "γ和β其实是人工设定的固定超参数。", "expect": "quiet"}]
    assert len(probe_problems(embedder, bank, bad)) == 2
