"""The glossary maps every name of a concept to one id, on queries and documents alike."""

import pytest

from coach.glossary import Glossary
from tests.conftest import SMALL_CORPUS


@pytest.fixture(scope="module")
def glossary():
    return Glossary.load(SMALL_CORPUS / "glossary.yaml")


@pytest.mark.parametrize("text, concept", [
    ("BN层有什么用", "batch-norm"),
    ("批标准化的作用", "batch-norm"),
    ("ｂａｔｃｈ　ｎｏｒｍ的作用", "batch-norm"),  # full-width letters and space
    ("今天天气不错", None),
    ("Batch Normalization为什么有效", "batch-norm"),
    ("batchnormalization", "batch-norm"),  # web copy that lost its spaces
    ("用relu还是sigmoid", "relu"),
    ("梯度弥散是什么", "vanishing-gradient"),
], ids=["abbr", "zh-variant", "full-width", "unrelated", "english", "no-spaces", "lowercase", "synonym"])
def test_concepts_are_found_under_any_name(glossary, text, concept):
    found = glossary.concepts_in(text)
    assert (concept in found) if concept else not found


def test_short_abbreviation_inside_a_longer_word_is_not_a_match(glossary):
    assert glossary.concepts_in("RCNN的候选框") == ["rcnn"]
    assert "cnn" not in glossary.concepts_in("RCNN的候选框")
    assert "cnn" in glossary.concepts_in("用CNN提取特征")


def test_expand_appends_canonical_names_for_the_embedder(glossary):
    expanded = glossary.expand("BN层有什么用")
    assert expanded.startswith("BN层有什么用")
    assert "批归一化" in expanded and "Batch Normalization" in expanded
    assert glossary.expand("今天天气不错") == "今天天气不错"


@pytest.mark.parametrize("term, text, expected", [
    ("批归一化", "BN可以加速收敛", True),
    ("BN", "批量归一化可以加速收敛", True),
    ("均值", "减去均值再除以标准差", True),
    ("均值", "只做了缩放", False),
    ("CNN", "RCNN先提候选框", False),
], ids=["zh-term-abbr-text", "abbr-term-zh-text", "plain-hit", "plain-miss", "glued-abbr"])
def test_mentions_is_glossary_aware(glossary, term, text, expected):
    assert glossary.mentions(term, text) is expected
