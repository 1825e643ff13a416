"""A sentence's claim is read with its negation and its word order, not only its words."""

import pytest

from coach import claims
from coach.bank import Bank
from coach.config import ROOT


@pytest.fixture(scope="module")
def glossary():
    return Bank.load(ROOT / "corpus").glossary


@pytest.mark.parametrize("text, negated", [
    ("KL散度不满足对称性", 1),
    ("KL散度是对称的", 0),
    ("AUC与阈值无关,不会随阈值变化", 1),
    ("二分类时softmax和sigmoid没有本质区别", 1),
    ("ReLU是非线性的,不同层学到不同特征", 0),
    ("自动求导既不是数值差分也不是符号求导", 1),
    ("这不是不可能的", 0),
    ("Dropout is not used at inference", 1),
    ("batch越大不一定越好", 1),
    ("无分类器引导和非结构化剪枝都很常用", 0),
], ids=["bu-manzu", "affirmed", "wuguan", "meiyou", "look-alikes", "neither-nor", "double-negative", "english-not",
        "bu-yiding", "names-with-wu-fei"])
def test_polarity_reads_negation(text, negated):
    assert claims.polarity(text) == negated


def test_a_swap_is_read_from_the_order_of_its_groups(glossary):
    groups = (("two-stage", "两阶段"), ("更快", "速度快"))
    assert claims.in_order("two-stage检测器速度更快，精度也更高", groups, glossary)
    assert claims.in_order("one-stage比two-stage更快", groups, glossary) is None
    assert claims.in_order("更快的是one-stage，two-stage更准", groups, glossary) is None


@pytest.mark.parametrize("sentence, stated", [
    ("以前大家担心会陷入很差的局部极小值，但这个担心在高维里基本不成立", 1),
    ("很多人以为R²不可能为负，其实不是，比预测均值还差时就是负的", 0),
    ("训练会陷入局部极小值", 0),
], ids=["affirmed-belief-denied", "negated-belief-denied", "plain"])
def test_a_reported_belief_that_the_next_clause_denies_reads_as_its_opposite(glossary, sentence, stated):
    groups = (("局部极小", "R²"),)
    assert claims.stated_polarity(sentence, groups, glossary) == stated


def test_short_names_match_as_words_not_inside_other_words(glossary):
    assert claims.named_terms("RNN容易梯度消失", (("BN",),), glossary) == set()
    assert claims.named_terms("加了BN以后", (("BN",),), glossary) == {0}


def test_a_name_is_not_found_inside_its_opposite(glossary):
    # "非结构化剪枝" is another method than "结构化剪枝", "无监督" another setting than "监督"
    assert claims.named_terms("非结构化剪枝需要稀疏库", (("结构化剪枝",),), glossary) == set()
    assert claims.named_terms("结构化剪枝在通用硬件上就能提速", (("结构化剪枝",),), glossary) == {0}
    assert claims.named_terms("这是一种无监督学习方法", (("监督学习",),), glossary) == set()
