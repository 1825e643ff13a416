"""Typos read the way a person reads them: homophones typed with pinyin, one-slip Latin words."""

from __future__ import annotations

import pytest

from coach.glossary import Glossary
from coach.spelling import Speller
from tests.conftest import ROOT

TEXTS = ["LSTM 的遗忘门、输入门和输出门", "gradient checkpoint 用计算换显存", "repetition penalty 抑制重复",
         "Adam 和 SGD 的区别", "Lion 优化器"]


@pytest.fixture(scope="module")
def speller():
    return Speller(Glossary.load(ROOT / "corpus" / "glossary.yaml"), TEXTS)


@pytest.mark.parametrize("typed, read, fixed", [
    ("过你和的解决方法有哪些", "过拟合的解决方法有哪些", ("过你和", "过拟合")),
    ("张亮并行推理时all-reduce插在哪", "张量并行推理时all-reduce插在哪", ("张亮并行", "张量并行")),
    ("LSMT三个门的作用", "LSTM三个门的作用", ("LSMT", "LSTM")),
    ("gradient checkpiont能省多少显存", "gradient checkpoint能省多少显存", ("checkpiont", "checkpoint")),
    ("repitition penalty咋算", "repetition penalty咋算", ("repitition", "repetition")),
])
def test_a_typo_is_read_as_the_term_it_stands_for(speller, typed, read, fixed):
    assert speller.correct(typed) == (read, [fixed])


@pytest.mark.parametrize("typed", [
    "实例分割和语义分割的区别",      # real words that sound like other things stay (和语 is not 越狱)
    "BN层为什么要加γ和β?",
    "Lion优化器和Adam有啥区别",     # a known word is never changed
    "MMLU是什么",                    # an unknown name with no near known word stays
    "How does Chinchilla scaling work",
    "word2vce的原理",                # words with digits are left alone
    "事例和实例",
    "DeepFM在特征交叉上做了什么改进",  # 交叉上 is a word and a particle, not a broken 交叉熵
    "CNN中的权值共享",                  # two characters are too short to guess from (权值 is not 卷积)
    "GraphSAGE和GCN有什么区别",         # a CamelCase name the bank lacks is not a slip
    "说话人验证用PLDA打分",             # an acronym with a letter more is another name (not LDA)
    "Tacotron和VITS有什么区别",         # an acronym with another letter is another name (not BITS)
    "Gemma的soft-capping是干嘛的",      # the first letter is never the slip (not mapping)
    "why are they less accurate",       # a short word has too many neighbours (not loss)
])
def test_what_is_not_a_typo_is_left_as_typed(speller, typed):
    assert speller.correct(typed) == (typed, [])


def test_a_typo_two_known_words_are_equally_near_is_left_alone():
    speller = Speller(Glossary.load(ROOT / "corpus" / "glossary.yaml"), ["bart", "barn"])
    assert speller.correct("bark") == ("bark", [])


def test_chat_answers_a_question_typed_with_a_homophone(real_kb):
    from coach.chat import ChatEngine

    typed = ChatEngine(real_kb).answer("过你和的解决方法有哪些")
    clean = ChatEngine(real_kb).answer("过拟合的解决方法有哪些")
    assert typed.grounded and typed.sources[0].item_id == clean.sources[0].item_id


def test_the_answer_says_how_a_typo_was_read(real_kb):
    from coach.chat import ChatEngine

    answer = ChatEngine(real_kb).answer("LSMT三个门的作用")
    assert answer.question == "LSMT三个门的作用" and answer.query == "LSTM三个门的作用"
