"""The question bank loads only when every item fits the schema; errors name the file and the item."""

import shutil

import pytest
import yaml

from coach.bank import Bank
from coach.config import ROOT
from coach.errors import BankError
from tests.conftest import SMALL_CORPUS


@pytest.fixture
def corpus(tmp_path):
    target = tmp_path / "corpus"
    shutil.copytree(SMALL_CORPUS, target)
    return target


def edit_item(corpus, index, **changes):
    path = corpus / "bank" / "normalization.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            data["items"][index].pop(key)
        else:
            data["items"][index][key] = value
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


@pytest.mark.parametrize("changes, words", [
    ({"difficulty": 5}, "difficulty"),
    ({"asks": ["只有一种问法"]}, "asks"),
    ({"key_points": [{"point": "只有一个要点", "terms": ["x"], "weight": 1}]}, "3 to 6"),
    ({"key_points": [{"point": f"要点{i}", "terms": [], "weight": 1} for i in range(3)]}, "term group"),
    ({"key_points": [{"point": f"要点{i}", "terms": ["x"], "weight": 9} for i in range(3)]}, "weight"),
    ({"question": {"zh": "只有中文?"}}, "zh and en"),
    ({"answer": "太短"}, "answer"),
    ({"id": "Bad Id!"}, "id"),
], ids=["difficulty", "asks", "too-few-points", "no-terms", "bad-weight", "no-english", "short-answer", "bad-id"])
def test_a_schema_error_names_the_file_and_the_item(corpus, changes, words):
    edit_item(corpus, 1, **changes)
    with pytest.raises(BankError) as err:
        Bank.load(corpus)
    message = str(err.value)
    assert message.startswith("normalization.yaml, item ")
    assert words in message


def test_duplicate_ids_across_files_are_refused(corpus):
    path = corpus / "bank" / "activation.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("act-why-nonlinear", "norm-bn-purpose"), encoding="utf-8")
    with pytest.raises(BankError, match="norm-bn-purpose"):
        Bank.load(corpus)


def test_broken_yaml_reports_the_line(corpus):
    (corpus / "bank" / "activation.yaml").write_text("topic: activation\nitems: [\n  - id: x\n", encoding="utf-8")
    with pytest.raises(BankError, match=r"activation.yaml is not valid YAML at line \d+"):
        Bank.load(corpus)


def test_check_finds_dangling_follow_ups_and_near_duplicates(corpus):
    edit_item(corpus, 0, follow_ups=["norm-does-not-exist"])
    path = corpus / "bank" / "activation.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("神经网络为什么需要非线性激活函数?", "BN层的作用是什么呢?"),
                    encoding="utf-8")
    problems = Bank.load(corpus).check()
    assert any("norm-does-not-exist" in p for p in problems)
    assert any("nearly the same question" in p for p in problems)


def test_the_shipped_bank_is_valid_large_and_covers_the_field():
    bank = Bank.load(ROOT / "corpus")
    assert bank.check() == []
    assert len(bank.items) >= 120
    stats = bank.stats()
    core = ["activation", "initialization", "normalization", "optimization", "regularization", "cnn", "rnn",
            "attention", "detection", "loss", "training", "metrics"]
    assert all(sum(stats[t].values()) >= 3 for t in core)
    assert len(bank.glossary.concepts) >= 150


@pytest.mark.parametrize("seed_question", [
    "CPU与GPU的区别", "什么样的数据集不适合深度学习", "激活函数的作用", "为什么用relu就不用sigmoid了",
    "CNN与DNN的区别", "为什么LSTM记的时间长", "什么造成梯度消失问题", "为什么需要RNN",
    "BN层的作用,为什么要在后面加伽马和贝塔", "1*1的卷积作用", "Faster RCNN跟RCNN有什么区别", "SPP,YOLO了解吗",
    "用过哪些移动端深度学习框架", "Caffe整体架构说一下", "GAN网络的思想", "什么是seq2seq model",
    "讲一下基于WFST的静态解码网络的语音识别流程", "dropout咋回事讲讲", "防止过拟合有哪些方法", "Adam",
    "怎么提升网络的泛化能力", "卷积层和池化层有什么区别", "RNN容易梯度消失,怎么解决", "LSTM跟RNN有啥区别",
    "attention机制", "除了GMM-HMM,你了解深度学习在语音识别中的应用吗",
])
def test_every_seed_question_finds_a_bank_item(real_kb, seed_question):
    hits = real_kb.search(seed_question, k=3, kind="bank")
    assert hits and hits[0].item_id, seed_question
