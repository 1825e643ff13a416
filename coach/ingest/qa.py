"""Q&A structure detection: cleaned text -> titled sections, each question kept with its whole answer.

Design. Each line gets a role (blank, text, code, markdown heading, list item
with its style such as "●" or "1、" or "1)", explicit question "Q:/问:", explicit
answer "参考回答:/答:/A:"). A section starts at:

* an explicit question or a markdown heading, always;
* an item of the document's *top-level list style*: the first style, in reading
  order, whose items mostly have body text under them. This is what keeps
  "5、CNN:" with its "1)卷积 2)池化 3)全连接" sub-points as one section, and what
  keeps an answer's own bullet list inside the answer;
* a short list item ending in "?"/"？" with body text under it;
* a short line ending in "?"/"？", only in a document with no other structure;
* a short unpunctuated line standing alone above a list of another style
  ("搜集的面试题" above "1. ...");
* the line right above an answer marker, when it is short (the question of
  a "问题\\n答：..." pair).

A list item is top-level only when the document has at most one markdown
heading (a page title) and no "Q:" markers: in heading-rich notes, lists
are content.

A section is a "qa" pair when it had an explicit question or answer marker
or its title reads as a question (ends in "?" or has a cue such as 为什么,
区别, 作用, how); otherwise a titled "section"; untitled text is "text".

A heading line that carries its answer ("Q1: ...? A1: ...", "4、...? 答案...",
"10、为什么需要RNN(循环神经网络)一般的...") is split at the inline answer marker,
else at the first "?", closing bracket or colon; failing all, the whole line
stays in the body under a title made of its first clause.

Compromises: all heuristics, tuned on copied Chinese interview pages. A
short unpunctuated line above a sub-list inside an answer ("优点" over
"1) ...") is taken for a heading; a question of more than ~80 characters
that does not end in "?" is read as body text; PDF lines broken by layout
are read as separate lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .clean import _FENCE  # one definition of a code fence for cleaning and structure

MAX_TITLE = 80  # a question line is short; longer lines are body text

_QUESTION = re.compile(r"^(?:Q|(?i:question)|问题|问|题目)\s*\d*\s*[:：]\s*(\S.*)$")
_ANSWER = re.compile(r"^(?:A|(?i:answer)|参考回答|参考答案|回答|答案|解答|答)\s*\d*\s*[:：]\s*(.*)$")
_INLINE_ANSWER = re.compile(r"(?:(?<=\s)|(?<=[?？。]))(?:A\s*\d*|参考回答|参考答案|答案|答)\s*[:：]\s*")
# "什么是BN? BN对每个批次做归一化。": a question and its answer on one short line.
_QUESTION_THEN_ANSWER = re.compile(r"^(.+?[?？])\s*([^?？]{10,})$")
_MD_HEADING = re.compile(r"^#{1,6}(?:[ \t]+|(?=[\u4e00-\u9fff]))(\S.*?)[\s#]*$")
_CN_NUM = "一二三四五六七八九十"
_ITEM_PATTERNS = (  # (style, pattern); a bullet's style is its character
    ("bullet", re.compile(r"^([●•·▪◆■◇○◦])\s*(\S.*)$")),
    ("bullet", re.compile(r"^([-*+])\s+(\S.*)$")),
    ("num、", re.compile(r"^(\d{1,3})\s*、\s*(\S.*)$")),
    ("cn、", re.compile(rf"^([{_CN_NUM}]{{1,3}})\s*[、.．]\s*(\S.*)$")),
    ("num.", re.compile(r"^(\d{1,3})[.．](?!\d)\s*(\S.*)$")),
    ("num)", re.compile(r"^(\d{1,3})[)）][、.]?\s*(\S.*)$")),
    ("(num)", re.compile(rf"^[（(](\d{{1,3}}|[{_CN_NUM}]{{1,3}})[）)]\s*(\S.*)$")),
)
_ENDS_QUESTION = re.compile(r"[?？][)）\s]*$")
_ENDS_PUNCT = re.compile(r"[。，,！!？?；;：:、.…)）]$")
_QUESTION_CUES = re.compile(
    r"什么|什麽|为何|为啥|如何|怎么|怎样|哪些|哪个|哪种|是否|有没有|能否|可否|吗|呢|区别|异同|不同|作用|原理|"
    r"优缺点|优势|好处|意义|讲讲|讲一下|说说|说一下|谈谈|介绍|解释|理解|对比|比较|思想|几种|了解|"
    r"\b(?:what|why|how|when|which|who|explain|describe|compare|difference|pros)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Section:
    title: str  # the question or heading, without its list marker; "" for untitled text
    body: str   # everything under the title, answer markers removed; may be ""
    kind: str   # "qa", "section" or "text"


@dataclass(frozen=True)
class _Line:
    raw: str
    role: str        # blank, text, code, heading, item, question, answer
    text: str = ""   # the line without its marker
    style: str = ""  # list style of an item


@dataclass(frozen=True)
class _Plan:
    top_style: str | None  # list style whose items start sections
    structured: bool       # any explicit structure at all


def parse_sections(text: str) -> list[Section]:
    """Split cleaned text into sections in reading order."""
    lines = _classify_all(text.split("\n"))
    plan = _plan(lines)
    builder = _Builder()
    for i, line in enumerate(lines):
        if line.role == "answer":
            builder.answer(line.text)
        elif _starts_section(lines, i, plan):
            builder.start(line.text, explicit=line.role == "question")
        else:
            builder.add(line.raw)
    return builder.finish()


# ---- line roles ---------------------------------------------------------------
def _classify_all(raw_lines: list[str]) -> list[_Line]:
    out, in_fence = [], False
    for raw in raw_lines:
        if _FENCE.match(raw):
            in_fence = not in_fence
            out.append(_Line(raw, "code"))
        else:
            out.append(_Line(raw, "code") if in_fence else _classify(raw))
    return out


def _classify(raw: str) -> _Line:
    if not raw.strip():
        return _Line(raw, "blank")
    for role, pattern in (("question", _QUESTION), ("answer", _ANSWER), ("heading", _MD_HEADING)):
        m = pattern.match(raw)
        if m:
            return _Line(raw, role, m.group(1).strip())
    for style, pattern in _ITEM_PATTERNS:
        m = pattern.match(raw)
        if m:
            key = style + m.group(1) if style == "bullet" else style
            return _Line(raw, "item", m.group(2).strip(), key)
    return _Line(raw, "text", raw.strip())


def _next_content(lines: list[_Line], i: int) -> _Line | None:
    # Indexing, not slicing: a slice per line would make large files quadratic.
    return next((lines[j] for j in range(i + 1, len(lines)) if lines[j].role != "blank"), None)


def _has_body(lines: list[_Line], i: int) -> bool:
    """True when item ``i`` has text of its own: under it, or on its own line after the question."""
    if len(lines[i].text) > MAX_TITLE or _QUESTION_THEN_ANSWER.match(lines[i].text):
        return True
    nxt = _next_content(lines, i)
    if nxt is None:
        return False
    return nxt.role in ("text", "answer", "code") or (nxt.role == "item" and nxt.style != lines[i].style)


# ---- where sections start -----------------------------------------------------
def _plan(lines: list[_Line]) -> _Plan:
    headings = sum(line.role == "heading" for line in lines)
    explicit = any(line.role == "question" for line in lines)
    top = None if headings >= 2 or explicit else _top_style(lines)
    return _Plan(top_style=top, structured=bool(headings or explicit or top))


def _top_style(lines: list[_Line]) -> str | None:
    """The first list style (in reading order) whose items mostly carry body text: the outline's top level."""
    styles = list(dict.fromkeys(line.style for line in lines if line.role == "item"))
    for style in styles:
        items = [i for i, line in enumerate(lines) if line.style == style and line.role == "item"]
        with_body = sum(_has_body(lines, i) for i in items)
        if with_body >= 2 and with_body * 2 > len(items):
            return style
    return None


def _starts_section(lines: list[_Line], i: int, plan: _Plan) -> bool:
    line = lines[i]
    if line.role in ("question", "heading"):
        return True
    if line.role == "item":
        if line.style == plan.top_style:
            return True
        return _is_question_line(line.text) and _has_body(lines, i)
    if line.role == "text":
        if not plan.structured and _is_question_line(line.text):
            return True
        return _is_standalone_heading(lines, i, plan)
    return False


def _is_question_line(text: str) -> bool:
    return len(text) <= MAX_TITLE and bool(_ENDS_QUESTION.search(text))


def _is_standalone_heading(lines: list[_Line], i: int, plan: _Plan) -> bool:
    """A short unpunctuated paragraph of its own right above a sub-list: "搜集的面试题" over "1. ..."."""
    text = lines[i].text
    if plan.top_style is None or len(text) > 20 or _ENDS_PUNCT.search(text):
        return False
    alone = (i == 0 or lines[i - 1].role == "blank") and i + 1 < len(lines) and lines[i + 1].role == "blank"
    nxt = _next_content(lines, i)
    return alone and nxt is not None and nxt.role == "item" and nxt.style != plan.top_style


# ---- titles -------------------------------------------------------------------
def split_heading(text: str) -> tuple[str, str]:
    """(title, rest) of a heading line; a long line usually carries its answer after the question."""
    inline = _INLINE_ANSWER.search(text)
    if inline and inline.start() > 0:
        return _tidy_title(text[: inline.start()]), text[inline.end():].strip()
    if _ENDS_QUESTION.search(text) and len(text) <= 2 * MAX_TITLE:
        return _tidy_title(text), ""  # one or several questions, no answer on the line
    inline_qa = _QUESTION_THEN_ANSWER.match(text)
    if inline_qa and len(inline_qa.group(1)) <= MAX_TITLE:
        return _tidy_title(inline_qa.group(1)), inline_qa.group(2).strip()
    if len(text) <= MAX_TITLE:
        return _tidy_title(text), ""
    head = text[:MAX_TITLE]
    for pattern in (r"^.*?[?？]", r"^[^)）]{1,40}[)）](?=[\u4e00-\u9fffA-Za-z])", r"^[^:：]{1,30}[:：]"):
        m = re.match(pattern, head)
        if m:
            return _tidy_title(m.group(0)), text[m.end():].strip()
    clause = re.match(r"^[^，,。；;！!]{1,40}", text)
    return _tidy_title(clause.group(0) if clause else text[:40]), text


def _tidy_title(title: str) -> str:
    # "梯度消失,梯度爆炸的问题," and "CNN:" lose the dangling punctuation.
    return title.strip().rstrip(":：,，、;；").strip()


def is_question(title: str) -> bool:
    """Does a title read as an interview question ("...?", "X的区别", "why ...")?"""
    return bool(_ENDS_QUESTION.search(title) or _QUESTION_CUES.search(title))


def _strip_marker(raw: str) -> str:
    line = _classify(raw)
    return line.text if line.role in ("item", "heading") else raw.strip()


# ---- assembly -----------------------------------------------------------------
@dataclass
class _Builder:
    sections: list[Section] = field(default_factory=list)
    title: str = ""
    lines: list[str] = field(default_factory=list)
    explicit: bool = False  # a "Q:" or answer marker made this a Q&A pair

    def start(self, heading: str, *, explicit: bool = False) -> None:
        self._flush()
        self.title, rest = split_heading(heading)
        self.lines = [rest] if rest else []
        self.explicit = explicit

    def answer(self, rest: str) -> None:
        """An answer marker: the short line above it, if it is not yet a title, is the question."""
        content = [i for i, line in enumerate(self.lines) if line.strip()]
        if content and len(self.lines[content[-1]].strip()) <= MAX_TITLE:
            question = self.lines[content[-1]]
            del self.lines[content[-1]:]
            self.start(_strip_marker(question))
        self.explicit = True
        if rest:
            self.lines.append(rest)

    def add(self, raw: str) -> None:
        self.lines.append(raw)

    def finish(self) -> list[Section]:
        self._flush()
        return self.sections

    def _flush(self) -> None:
        body = re.sub(r"\n{3,}", "\n\n", "\n".join(self.lines)).strip()
        if self.title or body:
            kind = "text" if not self.title else "qa" if self.explicit or is_question(self.title) else "section"
            self.sections.append(Section(self.title, body, kind))
        self.title, self.lines, self.explicit = "", [], False
