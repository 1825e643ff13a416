"""A report's Markdown as a PDF a candidate can print or keep (reportlab, no font files needed).

Chinese text uses reportlab's built-in CID font ``STSong-Light`` (Adobe's Asian
font pack names it; PDF readers supply the glyphs), so nothing is downloaded
or embedded. The Markdown is the report's own, a small subset: headings, block
quotes, lists, tables and paragraphs; everything else is shown as text.
"""

from __future__ import annotations

import io
import re
from xml.sax.saxutils import escape

FONT = "STSong-Light"


def markdown_to_pdf(markdown: str, title: str = "") -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    base = ParagraphStyle("body", fontName=FONT, fontSize=10.5, leading=16, wordWrap="CJK")
    styles = {
        1: ParagraphStyle("h1", parent=base, fontSize=18, leading=26, spaceAfter=6),
        2: ParagraphStyle("h2", parent=base, fontSize=14, leading=20, spaceBefore=10, spaceAfter=4),
        3: ParagraphStyle("h3", parent=base, fontSize=12, leading=18, spaceBefore=8, spaceAfter=2),
        4: ParagraphStyle("h4", parent=base, fontSize=11, leading=17, spaceBefore=6),
    }
    quote = ParagraphStyle("quote", parent=base, leftIndent=8 * mm, textColor=colors.HexColor("#444444"))
    item = ParagraphStyle("item", parent=base, leftIndent=6 * mm, bulletIndent=2 * mm)

    story, table = [], []

    def flush_table():
        if table:
            cells = [[Paragraph(_inline(c), base) for c in row] for row in table]
            grid = Table(cells, repeatRows=1, hAlign="LEFT")
            grid.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                                      ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                                      ("VALIGN", (0, 0), (-1, -1), "TOP")]))
            story.append(grid)
            story.append(Spacer(1, 3 * mm))
            table.clear()

    for raw in markdown.splitlines():
        line = raw.rstrip()
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                table.append(cells)
            continue
        flush_table()
        if not line.strip():
            story.append(Spacer(1, 2 * mm))
            continue
        heading = re.match(r"^(#{1,4})\s+(.*)$", line)
        if heading:
            story.append(Paragraph(_inline(heading.group(2)), styles[len(heading.group(1))]))
        elif line.startswith(">"):
            story.append(Paragraph(_inline(line.lstrip("> ")) or "&nbsp;", quote))
        elif re.match(r"^\s*(?:[-*]|\d+\.)\s+", line):
            bullet = re.match(r"^\s*([-*]|\d+\.)\s+", line)
            mark = "•" if bullet.group(1) in "-*" else bullet.group(1)
            story.append(Paragraph(_inline(line[bullet.end():]), item, bulletText=mark))
        else:
            story.append(Paragraph(_inline(line), base))
    flush_table()
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=16 * mm, title=title, author="interview-coach")
    doc.build(story)
    return out.getvalue()


def _inline(text: str) -> str:
    """Markdown emphasis and code as reportlab markup; everything else escaped as text."""
    text = escape(text.replace("✅", "√").replace("❌", "×"))  # glyphs the CID font has
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    text = re.sub(r"`([^`]+)`", r'<font face="Courier">\1</font>', text)
    return text
