"""Specification of coach.ingest: a user's file in, clean titled chunks out.

Fixtures in tests/fixtures/docs imitate what users paste from the web:
forum_page.txt   a forum page: "1、" sections, "1)" sub-points, floor/date lines, related-question widgets
bullet_qa.txt    "● question" / "参考回答:" pairs, a table flattened into "cell |" lines, a long answer
notes.md         markdown notes: headings, "Q:/A:" pairs, a list, a code block, a link
forum_page.html  an HTML page with nav, script, style, footer and a related-questions block
DOCX and PDF files are written into tmp_path by the tests themselves.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

import coach.ingest as ingest
from coach.errors import IngestError
from coach.ingest import Chunk, chunks_from_text, load_chunks

DOCS = Path(__file__).parent / "fixtures" / "docs"
FIXTURES = ["forum_page.txt", "bullet_qa.txt", "notes.md", "forum_page.html"]
SENTENCE_END = tuple("。！？；!?;.…")
NOISE = ["回答 5", "回答 12", "相关问题推荐", "去提问", "2楼", "3楼", "条回答", "发布", "图片来自", "原文地址",
         "http", "www.", "小鹿同学", "橘子不酸", "首页", "登录", "京ICP备", "dataLayer", "font-family", "console",
         "装饰器", "React", "广告"]
LONG_QUESTION = "讲一下Transformer的自注意力是怎么计算的?"


def chunks_of(name: str, **kwargs) -> list[Chunk]:
    return load_chunks(DOCS / name, **kwargs)


def qa_answers(chunks: list[Chunk]) -> dict[str, str]:
    """Question -> its whole answer (all its chunks joined)."""
    answers: dict[str, str] = {}
    for chunk in chunks:
        if chunk.kind == "qa":
            answers[chunk.title] = answers.get(chunk.title, "") + chunk.text
    return answers


# ---- every question comes out with its answer --------------------------------------------
QUESTIONS = [
    # forum page: the page's own question, "1、" sections, a question with its answer on the same line,
    # a heading glued to its answer after a bracket
    ("forum_page.txt", "机器学习面试要准备哪些基础", "线性代数、概率统计、优化方法"),
    ("forum_page.txt", "过拟合和欠拟合的区别", "判断方法是画出学习曲线"),
    ("forum_page.txt", "为什么要对输入特征做归一化?", "主导距离的计算"),
    ("forum_page.txt", "梯度爆炸怎么处理?", "常见的处理办法有梯度裁剪"),
    ("forum_page.txt", "为什么需要残差连接(ResNet)", "网络加深以后会出现退化现象"),
    # bullets with "参考回答:"; a question nobody answered is kept with its own text
    ("bullet_qa.txt", "你平时用PyTorch还是TensorFlow,读过框架源码吗?", "读过框架源码吗"),
    ("bullet_qa.txt", LONG_QUESTION, "面试时可以按照投影、打分、缩放"),
    ("bullet_qa.txt", "BatchNorm和LayerNorm有什么区别", "RNN和Transformer |"),
    ("bullet_qa.txt", "学习率预热(warmup)的作用", "二阶矩估计先稳定下来"),
    ("bullet_qa.txt", "1*1卷积能做什么", "起到降维或升维的作用"),
    ("bullet_qa.txt", "Adam", "并对初始阶段的偏差做了修正"),
    # markdown: "Q:/A:" (ASCII and full-width colons) and question headings
    ("notes.md", "什么是动量法?", "相当于给参数更新加上惯性"),
    ("notes.md", "学习率设得太大会出现什么现象？", "再配合预热和余弦退火"),
    ("notes.md", "Dropout 为什么能缓解过拟合？", "- 在现在常用的倒置实现中"),
    ("notes.md", "L1 与 L2 正则的区别", "weight_decay=1e-4"),
    # html: h2 questions, list items and table rows kept in the answer
    ("forum_page.html", "为什么ReLU比sigmoid更常用？", "- 输出中有大量零,带来稀疏激活"),
    ("forum_page.html", "Batch Size 对训练有什么影响？", "通常需要同步放大学习率并配合预热"),
    ("forum_page.html", "权重初始化的作用", "Xavier | tanh、sigmoid"),
]


@pytest.mark.parametrize("name, question, answer_part", QUESTIONS,
                         ids=[f"{n}:{q[:12]}" for n, q, _ in QUESTIONS])
def test_every_question_is_the_title_of_a_qa_chunk_holding_its_answer(name, question, answer_part):
    answers = qa_answers(chunks_of(name))
    assert question in answers, f"{question!r} not among {list(answers)}"
    assert answer_part in answers[question]


@pytest.mark.parametrize("name", FIXTURES)
def test_fixtures_yield_no_other_qa_pairs(name):
    expected = {q for n, q, _ in QUESTIONS if n == name}
    assert set(qa_answers(chunks_of(name))) == expected


@pytest.mark.parametrize("name", FIXTURES)
def test_no_chunk_contains_page_noise(name):
    for chunk in chunks_of(name):
        for noise in NOISE:
            assert noise not in chunk.title + chunk.text, f"{noise!r} left in chunk {chunk.position}"


def test_only_an_unanswered_question_stands_as_its_own_text():
    unanswered = {c.title for c in chunks_of("bullet_qa.txt") if c.text == c.title}
    assert unanswered == {"你平时用PyTorch还是TensorFlow,读过框架源码吗?"}


# ---- sections ----------------------------------------------------------------------------
def test_numbered_sub_points_stay_inside_their_section():
    """"3、CNN:" with "1)卷积 2)池化 3)全连接" is one titled section, not three orphan chunks."""
    chunks = chunks_of("forum_page.txt")
    cnn = [c for c in chunks if c.title == "CNN"]
    assert cnn and all(c.kind == "section" for c in cnn)
    body = "".join(c.text for c in cnn)
    for point in ("1)卷积", "2)池化", "3)全连接"):
        assert point in body
    assert not any(c.title.startswith(("卷积", "池化", "全连接")) for c in chunks)


@pytest.mark.parametrize("name, title, body_part", [
    ("forum_page.txt", "常用评价指标", "召回率:真实为正的样本"),
    ("forum_page.txt", "整理的趣味题", "答案2:从两头同时点燃"),
    ("notes.md", "优化与正则化复习笔记", "个人复习用"),
], ids=["plain-heading", "brain-teasers-under-a-standalone-line", "markdown-intro"])
def test_headings_that_are_not_questions_become_titled_sections(name, title, body_part):
    sections = [c for c in chunks_of(name) if c.title == title]
    assert sections and all(c.kind == "section" for c in sections)
    assert body_part in "".join(c.text for c in sections)


def test_text_without_any_structure_comes_out_as_untitled_text():
    text = "梯度下降沿着负梯度方向更新参数。学习率决定每一步走多远。\n\n动量可以减少震荡,加快收敛速度。"
    chunks = chunks_from_text(text, "plain.txt")
    assert [(c.title, c.kind) for c in chunks] == [("", "text")]
    assert chunks[0].text == text


LAYOUTS = {
    "plain-question-lines": (
        "什么是过拟合？\n模型记住了训练集的噪声,在新数据上表现变差。\n怎样缓解过拟合？\n增加数据、加正则化或者提前停止训练。",
        {"什么是过拟合？": "模型记住了训练集的噪声,在新数据上表现变差。", "怎样缓解过拟合？": "增加数据、加正则化或者提前停止训练。"}),
    "answer-marker-makes-the-line-above-a-question": (
        "卷积核大小的选择\n答：小卷积核堆叠可以用更少的参数得到同样大的感受野。",
        {"卷积核大小的选择": "小卷积核堆叠可以用更少的参数得到同样大的感受野。"}),
    "numbered-Q-and-A-on-one-line": (
        "Q1: 什么是过拟合? A1: 训练集好验证集差,模型记住了噪声。\nQ2: 怎么缓解? A2: 增加数据、正则化、早停都可以。",
        {"什么是过拟合?": "训练集好验证集差,模型记住了噪声。", "怎么缓解?": "增加数据、正则化、早停都可以。"}),
    "numbered-questions-with-inline-answers": (
        "1. 什么是BN? BN对每个批次做归一化,加速训练。\n2. 什么是LN? LN在样本内部对特征归一化。",
        {"什么是BN?": "BN对每个批次做归一化,加速训练。", "什么是LN?": "LN在样本内部对特征归一化。"}),
    "chinese-numerals-and-windows-line-ends": (
        "一、什么是卷积？\r\n用卷积核在输入上滑动做加权求和。\r\n二、什么是池化？\r\n在局部窗口内取最大值或平均值。\r\n",
        {"什么是卷积？": "用卷积核在输入上滑动做加权求和。", "什么是池化？": "在局部窗口内取最大值或平均值。"}),
    "a-numbered-list-inside-an-answer-stays-in-it": (
        "● 常见的优化器有哪些?\n参考回答:\n1. SGD\n2. Momentum\n3. Adam\n其中Adam收敛最快。",
        {"常见的优化器有哪些?": "1. SGD\n2. Momentum\n3. Adam\n其中Adam收敛最快。"}),
    "bullets-under-a-single-page-title-stay-in-the-text": (
        "# Adam 笔记\n\nAdam 的要点:\n\n- 一阶矩估计梯度均值\n- 二阶矩估计梯度方差\n\n因此它能自适应调整步长。",
        {}),
}


@pytest.mark.parametrize("text, answers", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_question_and_answer_layouts(text, answers):
    chunks = chunks_from_text(text, "layout.txt")
    assert qa_answers(chunks) == answers
    if not answers:
        assert [c.title for c in chunks] == ["Adam 笔记"] and "- 二阶矩估计梯度方差" in chunks[0].text


def test_code_blocks_are_kept_verbatim_and_their_comments_are_not_headings(tmp_path):
    code = "```python\n# 冻结主干网络\nfor p in backbone.parameters():\n    p.requires_grad = False\n>>> [p.requires_grad for p in head]\n```"
    (tmp_path / "code.md").write_text(f"## 如何冻结参数?\n\n把不需要训练的参数的 **requires_grad** 设为 False。\n\n{code}", encoding="utf-8")
    [chunk] = load_chunks(tmp_path / "code.md")
    assert chunk.title == "如何冻结参数?"
    assert chunk.text == f"把不需要训练的参数的 requires_grad 设为 False。\n\n{code}"


# ---- chunking ----------------------------------------------------------------------------
@pytest.mark.parametrize("max_chars", [200, 300, 600])
def test_a_long_answer_is_split_at_sentence_ends_and_keeps_its_question(max_chars):
    answer = (DOCS / "bullet_qa.txt").read_text(encoding="utf-8").split("参考回答:\n")[1].split("●")[0].strip()
    assert len(answer) > 1500
    pieces = [c for c in chunks_of("bullet_qa.txt", max_chars=max_chars) if c.title == LONG_QUESTION]
    assert len(pieces) >= max(3, len(answer) // max_chars)
    assert {c.kind for c in pieces} == {"qa"}
    assert all(len(c.text) <= max_chars for c in pieces)
    assert all(c.text.endswith(SENTENCE_END) for c in pieces[:-1]), [c.text[-5:] for c in pieces]
    assert [c.position for c in pieces] == list(range(pieces[0].position, pieces[0].position + len(pieces)))
    joined = "".join(c.text for c in pieces)
    for sentence in re.findall(r"[^。]+。", answer):
        assert sentence.strip() in joined  # nothing lost between pieces


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("max_chars, overlap", [(60, 80), (120, 20), (600, 80)], ids=["tiny", "small", "default"])
def test_no_chunk_is_longer_than_max_chars(name, max_chars, overlap):
    assert all(len(c.text) <= max_chars for c in chunks_of(name, max_chars=max_chars, overlap=overlap))


def test_fragments_are_dropped_but_a_short_answer_to_a_question_is_kept():
    text = "● 最少称几次能找出较重的球?\n参考回答:\n2次。\n\n下图:\n\n● 第二个问题是什么?\n参考回答:\n这个问题的答案足够长,可以单独成为一个片段。"
    chunks = chunks_from_text(text, "short.txt")
    assert [(c.title, c.text) for c in chunks][0] == ("最少称几次能找出较重的球?", "2次。\n\n下图:")
    assert all(c.text.strip() for c in chunks)


# ---- identity of chunks ------------------------------------------------------------------
@pytest.mark.parametrize("name", FIXTURES)
def test_source_is_the_base_name_and_positions_count_from_zero(name):
    chunks = chunks_of(name)
    assert chunks
    assert {c.source for c in chunks} == {name}
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert {c.kind for c in chunks} <= {"qa", "section", "text"}


@pytest.mark.parametrize("source", ["notes.md", "/home/me/interview/notes.md", r"C:\Users\me\notes.md"],
                         ids=["bare", "posix-path", "windows-path"])
def test_chunks_from_text_keeps_only_the_base_name(source):
    assert {c.source for c in chunks_from_text("什么是张量?\n张量就是多维数组,标量、向量和矩阵都是它的特例。", source)} == {"notes.md"}


# ---- other formats -----------------------------------------------------------------------
def test_docx_headings_become_questions_and_lists_and_tables_are_kept(tmp_path):
    import docx

    document = docx.Document()
    document.add_heading("卷积网络面试题", level=1)
    document.add_heading("感受野是什么？", level=2)
    document.add_paragraph("感受野是输出特征图上一个点对应到输入图像上的区域大小。层数越深,感受野越大。")
    document.add_heading("空洞卷积的作用", level=2)
    document.add_paragraph("在不增加参数量也不降低分辨率的情况下扩大感受野,常用于语义分割。")
    document.add_paragraph("缺点是可能产生网格效应,丢失局部连续的信息", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, [("膨胀率", "感受野"), ("2", "7×7")]):
        for cell, text in zip(row.cells, cells):
            cell.text = text
    document.save(tmp_path / "cnn.docx")

    chunks = load_chunks(tmp_path / "cnn.docx")
    answers = qa_answers(chunks)
    assert set(answers) == {"感受野是什么？", "空洞卷积的作用"}
    assert "层数越深,感受野越大" in answers["感受野是什么？"]
    assert "- 缺点是可能产生网格效应" in answers["空洞卷积的作用"]
    assert "膨胀率 | 感受野\n2 | 7×7" in answers["空洞卷积的作用"]
    assert {c.source for c in chunks} == {"cnn.docx"}


def write_text_pdf(path: Path, lines: list[str]) -> None:
    """A minimal one-page PDF (Helvetica, one line per string) with a correct xref table."""
    escaped = [line.replace("\\", r"\\").replace("(", r"\(").replace(")", r"\)") for line in lines]
    stream = "BT /F1 11 Tf 14 TL 72 740 Td " + " T* ".join(f"({s}) Tj" for s in escaped) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream.encode('latin-1'))} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))


def test_pdf_text_layer_is_read_into_qa_pairs(tmp_path):
    write_text_pdf(tmp_path / "ml.pdf", [
        "Q: What is overfitting?",
        "A: The model memorises noise in the training set and fails on new data.",
        "Q: Why does dropout help (in short)?",
        "A: It drops random units, so no unit can rely on a few co-adapted features.",
    ])
    chunks = load_chunks(tmp_path / "ml.pdf")
    assert [(c.title, c.kind) for c in chunks] == [("What is overfitting?", "qa"), ("Why does dropout help (in short)?", "qa")]
    assert chunks[0].text == "The model memorises noise in the training set and fails on new data."
    assert chunks[1].source == "ml.pdf"


def test_gb18030_text_is_decoded(tmp_path):
    text = "● 什么是梯度下降？\n参考回答:\n沿着损失函数梯度的反方向更新参数,步长由学习率决定。\n"
    (tmp_path / "gbk.txt").write_bytes(text.encode("gb18030"))
    [chunk] = load_chunks(tmp_path / "gbk.txt")
    assert (chunk.title, chunk.text) == ("什么是梯度下降？", "沿着损失函数梯度的反方向更新参数,步长由学习率决定。")


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_text_with_a_byte_order_mark_is_decoded(tmp_path, encoding):
    (tmp_path / "bom.txt").write_bytes("什么是张量?\n张量就是多维数组,标量、向量和矩阵都是它的特例。".encode(encoding))
    assert load_chunks(tmp_path / "bom.txt")[0].title == "什么是张量?"


# ---- cleaning ----------------------------------------------------------------------------
@pytest.mark.parametrize("line", [
    "详情见 https://arxiv.org/abs/1706.03762 这篇论文的第三节。",
    "图片来自ImageNet数据集,共有一千个类别。",
    "如下图所示,残差块包含两层卷积。",
    "新版本发布以后,推理速度提升了一倍。",
], ids=["url-inside-a-sentence", "picture-source-in-a-sentence", "orphan-caption", "the-word-发布-in-content"])
def test_meaningful_text_is_kept_word_for_word(line):
    from coach.ingest.clean import clean_text

    assert clean_text(f"正文第一段。\n\n{line}") == f"正文第一段。\n\n{line}"


def test_whitespace_is_normalised():
    from coach.ingest.clean import clean_text

    assert clean_text("\ufeff  第一行\u3000\u3000有全角空格 \r\n\r\n\r\n\t第二行\u00a0 结束  ") == "第一行 有全角空格\n\n第二行 结束"


# ---- errors ------------------------------------------------------------------------------
def _unsupported(tmp_path, monkeypatch):
    return _write(tmp_path / "setup.exe", b"MZ\x90\x00" * 10)


def _empty(tmp_path, monkeypatch):
    return _write(tmp_path / "empty.txt", b"")


def _blank(tmp_path, monkeypatch):
    return _write(tmp_path / "blank.md", " \n\u3000\n\t\n".encode())


def _only_noise(tmp_path, monkeypatch):
    return _write(tmp_path / "widgets.txt", "相关问题推荐\n\n • 回答 5\n\n 看看这个...\n\n没有解决我的问题,去提问".encode())


def _too_big(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "MAX_FILE_BYTES", 100)
    return _write(tmp_path / "big.txt", "深度学习".encode() * 100)


def _corrupt_pdf(tmp_path, monkeypatch):
    return _write(tmp_path / "scan.pdf", random.Random(1).randbytes(4096))


def _truncated_pdf(tmp_path, monkeypatch):
    return _write(tmp_path / "cut.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")


def _corrupt_docx(tmp_path, monkeypatch):
    return _write(tmp_path / "notes.docx", random.Random(2).randbytes(4096))


def _binary_txt(tmp_path, monkeypatch):
    return _write(tmp_path / "data.txt", bytes(range(256)) * 4)


def _missing(tmp_path, monkeypatch):
    return tmp_path / "nowhere" / "missing.md"


def _folder(tmp_path, monkeypatch):
    (tmp_path / "folder.md").mkdir()
    return tmp_path / "folder.md"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


ERROR_CASES = [_unsupported, _empty, _blank, _only_noise, _too_big, _corrupt_pdf, _truncated_pdf, _corrupt_docx,
               _binary_txt, _missing, _folder]


@pytest.mark.parametrize("make", ERROR_CASES, ids=[f.__name__.strip("_").replace("_", "-") for f in ERROR_CASES])
def test_each_unusable_file_gives_one_sentence_naming_the_file(make, tmp_path, monkeypatch):
    path = make(tmp_path, monkeypatch)
    with pytest.raises(IngestError) as caught:
        load_chunks(path)
    message = str(caught.value)
    assert path.name in message
    assert str(tmp_path) not in message  # the base name, never the full path
    rest = message.replace(path.name, "FILE")
    assert rest.endswith(".") and rest.count(". ") == 0 and "\n" not in rest, message
    assert ";" in rest  # the sentence goes on to say what to do


def test_an_in_memory_text_with_nothing_left_after_cleaning_is_an_error():
    with pytest.raises(IngestError, match="paste.txt"):
        chunks_from_text("2条回答\n3楼 · 2021-01-01 10:00\nhttps://example.com", "/tmp/paste.txt")
