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
    ({"format": "essay"}, "format"),
    ({"format": "coding"}, "reference code"),
], ids=["difficulty", "asks", "too-few-points", "no-terms", "bad-weight", "no-english", "short-answer", "bad-id",
        "unknown-format", "coding-without-code"])
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


def test_a_coding_item_shows_its_reference_code_with_the_model_answer(corpus):
    from coach.grade import Reference

    edit_item(corpus, 1, format="coding", code="def f(x):\n    return x")
    item_id = yaml.safe_load((corpus / "bank" / "normalization.yaml").read_text(encoding="utf-8"))["items"][1]["id"]
    item = Bank.load(corpus).get(item_id)
    assert item.format == "coding"
    model = Reference.from_item(item).model_answer
    assert model.startswith(item.answer.rstrip()) and "```python\ndef f(x):\n    return x\n```" in model


def test_the_shipped_bank_is_valid_large_and_covers_the_field():
    bank = Bank.load(ROOT / "corpus")
    assert bank.check() == []
    assert len(bank.items) >= 120
    stats = bank.stats()
    core = ["activation", "initialization", "normalization", "optimization", "regularization", "cnn", "rnn",
            "attention", "detection", "loss", "training", "metrics"]
    assert all(sum(stats[t].values()) >= 3 for t in core)
    assert len(bank.glossary.concepts) >= 150


SEED_QUESTIONS = {  # every question of the two documents in shared/seeds, as the page words it
    "CPU与GPU的区别": ["basic-cpu-vs-gpu"],
    "什么样的资料集不适合深度学习的训练学习?": ["basic-data-unsuitable-for-dl"],
    "激活函数的作用": ["act-why-nonlinear"],
    "为什么深层神经网络比浅层神经网络更高效": ["basic-why-deep-efficient"],
    "CNN的三个优点": ["cnn-three-properties"],
    "CNN与DNN的区别": ["basic-dnn-vs-cnn"],
    "filter尺寸计算 FeatureMap的尺寸": ["cnn-output-size"],
    "RNN为什么具有记忆功能?": ["rnn-memory"],
    "为什么LSTM记的时间长?": ["rnn-lstm-why-long"],
    "为什么NLP和Speech的很多问题也可以用CNN解出来?为什么AlphaGo里也用了CNN?": ["cnn-why-nlp-speech-go"],
    "什麽造成梯度消失问题?": ["train-vanishing-gradient-cause", "act-saturation-vanishing"],
    "为什么需要RNN": ["rnn-why-rnn"],
    "滑动平均的作用": ["opt-ema"],
    "台球有8个,其中一个比其他的7个都要重一些,天平最少几次能找出最重的": ["puz-heavy-ball"],
    "5L和3L两个杯子量出4L水": ["puz-water-jugs"],
    "深度学习了解多少,有看过底层代码吗?caffe,tf?": ["fw-dl-internals"],
    "除了GMM-HMM,你了解深度学习在语音识别中的应用吗?": ["speech-dl-in-asr"],
    "用过哪些移动端深度学习框架?": ["fw-mobile-frameworks"],
    "Caffe:整体架构说一下,新加一个层需要哪些步骤": ["fw-caffe-arch"],
    "Caffe卷积是怎么实现的": ["fw-caffe-conv-im2col"],
    "Caffe多卡机制,数据并行还是模型并行?": ["fw-multi-gpu"],
    "BN层的作用,为什么要在后面加伽马和贝塔,不加可以吗": ["norm-bn-gamma-beta", "norm-bn-purpose"],
    "梯度消失,梯度爆炸的问题": ["train-vanish-explode-causes", "train-vanishing-gradient-cause", "train-vanish-explode-fixes"],
    "Adam": ["opt-adam"],
    "attention机制": ["attn-what-is-attention"],
    "RNN梯度消失问题,为什么LSTM和GRU可以解决此问题": ["rnn-lstm-why-long", "rnn-vanishing-fix"],
    "GAN网络的思想": ["gen-gan-idea"],
    "1*1的卷积作用": ["cnn-1x1-conv"],
    "怎么提升网络的泛化能力": ["reg-generalization"],
    "什么是seq2seq model": ["rnn-seq2seq"],
    "为什么用relu就不用sigmoid了": ["act-relu-vs-sigmoid"],
    "讲一下基于WFST的静态解码网络的语音识别流程?": ["speech-wfst-decoding"],
    "目标检测了解吗,Faster RCNN跟RCNN有什么区别": ["det-rcnn-evolution"],
    "SPP,YOLO了解吗?": ["det-sppnet", "det-yolo"],
    "梯度消失梯度爆炸怎么解决": ["train-vanish-explode-fixes"],
    "RNN容易梯度消失,怎么解决?": ["rnn-vanishing-fix"],
    "LSTM跟RNN有啥区别": ["rnn-lstm-vs-rnn"],
    "卷积层和池化层有什么区别": ["cnn-conv-vs-pool"],
    "防止过拟合有哪些方法": ["reg-overfitting-methods"],
    "dropout咋回事讲讲": ["reg-dropout"],
    "relu": ["act-relu-sparsity-dead", "act-relu-vs-sigmoid"],
}


@pytest.mark.parametrize("seed_question, expected", list(SEED_QUESTIONS.items()), ids=list(SEED_QUESTIONS))
def test_every_seed_question_finds_its_bank_item_in_the_top_3(real_kb, seed_question, expected):
    ids = [h.item_id for h in real_kb.search(seed_question, k=3, kind="bank")]
    assert set(ids) & set(expected), ids
