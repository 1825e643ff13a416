"""Web-page noise removal for text copied from Chinese Q&A forums and blogs.

Design: the text is cleaned line by line, and a line is removed only when
it matches a narrow pattern of page furniture (widgets, floor and date
lines, link footers); every other line is kept word for word, because the
answer text is what the index is for. Whitespace is normalised everywhere
except inside fenced code blocks.

What goes:

* the "相关问题推荐" (related questions) block, from its heading to the next
  markdown heading or the end of the text, and anywhere "回答 N" widgets
  with the teaser paragraph under each;
* "N条回答" headers, "2楼 · 2020-07-31 16:25" floor lines together with the
  user name just above them, short "... 2020-07-31 15:08发布" date lines;
* "图片来自网址:", "原文地址: ..." lines, lines that are only a URL, "没有解决我的
  问题,去提问" footers, separator lines made only of "|".

One structure hint is added: on a forum page the first line is the page's
question and a "发布" date line follows it, so that line becomes a "# " heading.

Compromises: URLs inside a sentence are kept (they can be content); a
related-questions block in the middle of a plain-text page swallows the
text after it; "下图所示" captions whose picture is gone stay.
"""

from __future__ import annotations

import re

_SPACES = re.compile(r"[\t\u00a0\u2000-\u200a\u202f\u205f\u3000]")
_INVISIBLE = re.compile(r"[\u200b-\u200d\u2060\ufeff]")
_FENCE = re.compile(r"^\s*(```|~~~)")
_MARKER = re.compile(r"^(?:#{1,6}\s*|[-*+•●·▪◦]\s*)")

_RELATED_HEADING = re.compile(r"^(?:相关问题推荐|相关问题|相关推荐|相关阅读|推荐阅读|猜你喜欢|热门推荐|相关文章)\s*[:：]?$")
_WIDGET = re.compile(r"^回答\s*\d+\b")
_ANSWER_COUNT = re.compile(r"^\d+\s*[条个]\s*(?:回答|答案|评论|回复)$")
_FLOOR = re.compile(r"^\d{1,5}\s*楼(?:\s*[·•・|]\s*.*)?$")
_DATE = re.compile(r"\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}")
# A colon is required: "图片来自ImageNet" in a sentence is content, "图片来自网址:" is not.
_SOURCE_LINE = re.compile(r"^(?:图片来自网址|图片来自|图片来源|图片出处|图源|原文地址|原文链接|原文出处|本文链接|本文地址|转载自|版权声明)\s*[:：]")
_BARE_URL = re.compile(r"^[<(（\[]?(?:https?://|www\.)\S*$", re.IGNORECASE)
_ASK_FOOTER = re.compile(r"没有解决我的问题\s*[,，]?\s*去提问")
_PIPES_ONLY = re.compile(r"^[|｜\s]+$")
_JUNK_LINES = frozenset({"写回答", "邀请回答", "关注问题", "收藏", "分享", "举报", "点赞", "展开全文", "阅读全文", "返回顶部"})
_SENTENCE_PUNCT = re.compile(r"[。，,！？!?；;：:、]")


def clean_text(text: str) -> str:
    """``text`` without page noise, whitespace normalised, paragraphs separated by one blank line."""
    lines = _normalise_lines(_normalise_chars(text).split("\n"))
    return "\n".join(_squeeze_blank_lines(_drop_noise(lines)))


def _normalise_chars(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    return _ASK_FOOTER.sub("", text)


def _normalise_lines(lines: list[str]) -> list[str]:
    """Strip lines and collapse runs of spaces (full-width ones included), but not inside code fences."""
    out, in_fence = [], False
    for line in lines:
        if _FENCE.match(line):
            in_fence = not in_fence
            out.append(line.strip())
        elif in_fence:
            out.append(line.rstrip())
        else:
            out.append(re.sub(r" {2,}", " ", _SPACES.sub(" ", line)).strip())
    return out


def _squeeze_blank_lines(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return out


class _NoiseFilter:
    """A line-by-line pass; the state covers the multi-line widgets (related block, teaser under "回答 N")."""

    def __init__(self) -> None:
        self.kept: list[str] = []
        self.in_related = False
        self.teaser = 0  # 0: none, 1: waiting for the teaser under a "回答 N" line, 2: inside it

    def feed(self, line: str) -> None:
        bare = _MARKER.sub("", line)
        if self._skipping(line, bare):
            return
        if _RELATED_HEADING.match(bare):
            self.in_related = True
        elif _WIDGET.match(bare):
            # A bare "回答 5" line has its teaser paragraph under it; an inline one carries it.
            self.teaser = 1 if re.fullmatch(r"回答\s*\d+", bare) else 0
        elif _FLOOR.match(bare):
            self._drop_user_name()
        elif _is_date_line(bare):
            self._promote_page_title()
        elif not _is_noise_line(bare):
            self.kept.append(line)

    def _skipping(self, line: str, bare: str) -> bool:
        if self.in_related:
            # The related block ends at the next real heading (HTML pages), else at the end.
            if line.startswith("#") and not _RELATED_HEADING.match(bare):
                self.in_related = False
                return False
            return True
        if self.teaser and line:
            self.teaser = 2
            return True
        if self.teaser == 2:  # the blank line after the teaser ends it
            self.teaser = 0
        return False

    def _drop_user_name(self) -> None:
        """Forums print the poster's name on the line right above "2楼 · date"."""
        last = self.kept[-1] if self.kept else ""
        if last and len(last) <= 24 and not _SENTENCE_PUNCT.search(last) and not _MARKER.match(last):
            self.kept.pop()

    def _promote_page_title(self) -> None:
        """A "发布" date line right under the page's first line marks that line as the page's question."""
        content = [i for i, line in enumerate(self.kept) if line]
        if len(content) == 1 and not self.kept[content[0]].startswith("#") and len(self.kept[content[0]]) <= 80:
            self.kept[content[0]] = "# " + self.kept[content[0]]


def _is_date_line(bare: str) -> bool:
    return len(bare) <= 60 and ("发布" in bare or "发表于" in bare) and bool(_DATE.search(bare))


def _is_noise_line(bare: str) -> bool:
    return bool(
        _ANSWER_COUNT.match(bare) or _SOURCE_LINE.match(bare) or _BARE_URL.match(bare)
        or (bare and _PIPES_ONLY.match(bare)) or bare in _JUNK_LINES
    )


def _drop_noise(lines: list[str]) -> list[str]:
    noise = _NoiseFilter()
    for line in lines:
        noise.feed(line)
    return noise.kept
