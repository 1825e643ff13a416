"""Per-format extraction: one file in, plain text with structure hints out.

Every reader returns the same light markdown dialect, so the later steps
need to know nothing about formats:

* a heading becomes its own line ``"## text"`` (level kept, as in markdown);
* a list item becomes its own line ``"- text"``;
* paragraphs are separated by a blank line, table rows are ``"cell | cell"``.

Compromises, chosen for simplicity over fidelity:

* Text files are decoded as UTF-8 (with or without BOM), UTF-16 with a BOM,
  then GB18030; a legacy single-byte file (cp1252 ...) may decode as
  GB18030 mojibake rather than fail.
* PDF text comes from pypdf's text layer: layout line breaks stay line breaks,
  scanned pages give no text, and multi-column pages may interleave.
* DOCX numbering produced by Word's list engine is not in the text, so a
  numbered list item reads ``"- item"``; headers, footers and comments are skipped.
* The heavy parsers (bs4, pypdf, python-docx) are imported inside the reader
  that needs them so that importing ``coach.ingest`` stays cheap.
"""

from __future__ import annotations

import io
import logging
import re
from contextlib import contextmanager

from ..errors import IngestError

# Elements that never hold the page's own text.
_HTML_JUNK_TAGS = ("script", "style", "noscript", "template", "nav", "footer", "aside", "form", "iframe", "svg", "button")
_HTML_JUNK_ROLES = ("navigation", "contentinfo", "banner", "complementary", "search")
# Elements after which the text flows on a new paragraph.
_HTML_BLOCK_TAGS = ("p", "div", "section", "article", "main", "header", "blockquote", "pre", "table",
                    "ul", "ol", "dl", "dt", "dd", "figure", "figcaption", "details", "summary", "hr")
_W_P = re.compile(rb"<w:p[ >/]")
_DOCX_HEADING = re.compile(r"^(?:heading|标题)\s*(\d)$", re.IGNORECASE)


def extract_text(data: bytes, suffix: str, name: str) -> str:
    """The text of a document's bytes (already checked for type and size); ``name`` is for messages."""
    reader = {
        ".txt": read_plain, ".md": read_markdown, ".markdown": read_markdown,
        ".html": read_html, ".htm": read_html, ".pdf": read_pdf, ".docx": read_docx,
    }[suffix.lower()]
    return reader(data, name)


# ---- text -----------------------------------------------------------------
def decode_text(data: bytes, name: str) -> str:
    """Decode text bytes: UTF-8 (BOM or not), UTF-16 with BOM, then GB18030 (Chinese Windows)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    # A NUL byte means a binary file: GB18030 would "decode" it into garbage.
    elif b"\x00" not in data:
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                continue
    raise IngestError(f"{name} is not readable text (expected UTF-8 or GB18030); re-save it as UTF-8 and try again.")


def read_plain(data: bytes, name: str) -> str:
    return decode_text(data, name)


def read_markdown(data: bytes, name: str) -> str:
    return markdown_to_text(decode_text(data, name))


def markdown_to_text(text: str) -> str:
    """Keep headings, lists, tables and code; drop markup that only adds noise to an index."""
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.DOTALL)  # YAML front matter
    # Odd parts are fenced code blocks, which stay exactly as written.
    parts = re.split(r"(^(?:```|~~~).*?^(?:```|~~~)[^\n]*$)", text, flags=re.MULTILINE | re.DOTALL)
    return "".join(part if i % 2 else _strip_markdown(part) for i, part in enumerate(parts))


def _strip_markdown(text: str) -> str:
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)                    # images
    text = re.sub(r"\[([^\]]+)\]\((?:[^)]*)\)", r"\1", text)            # links keep their words
    text = re.sub(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", r"\2", text)        # bold
    text = re.sub(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$", "", text, flags=re.MULTILINE)  # table rules
    text = re.sub(r"^\s*(?:[-*_]\s*){3,}$", "", text, flags=re.MULTILINE)  # horizontal rules
    return re.sub(r"^\s*>+ ?", "", text, flags=re.MULTILINE)                # block quotes


# ---- html -------------------------------------------------------------------
def read_html(data: bytes, name: str) -> str:
    return html_to_text(decode_text(data, name))


def html_to_text(markup: str) -> str:
    """Visible text of the page body, headings as ``#`` lines and list items as ``-`` lines."""
    from bs4 import BeautifulSoup, Comment, NavigableString

    soup = BeautifulSoup(markup, "lxml")
    root = soup.body or soup
    _drop_html_junk(root, Comment)
    for node in root.find_all(string=True):
        # Source line breaks inside a paragraph mean nothing in HTML; <pre> keeps them.
        if node.find_parent("pre") is None:
            node.replace_with(NavigableString(re.sub(r"\s+", " ", str(node))))
    _mark_html_structure(root)
    return root.get_text()


def _drop_html_junk(root, comment_type) -> None:
    for comment in root.find_all(string=lambda s: isinstance(s, comment_type)):
        comment.extract()
    for tag in root.find_all(_HTML_JUNK_TAGS):
        tag.decompose()
    for tag in root.find_all(attrs={"role": list(_HTML_JUNK_ROLES)}):
        tag.decompose()


def _mark_html_structure(root) -> None:
    for br in root.find_all("br"):
        br.replace_with("\n")
    for level in range(1, 7):
        for tag in root.find_all(f"h{level}"):
            tag.insert_before("\n\n" + "#" * level + " ")
            tag.insert_after("\n\n")
    for tag in root.find_all("li"):
        tag.insert_before("\n- ")
        tag.insert_after("\n")
    for tag in root.find_all("tr"):
        cells = [c.get_text(" ", strip=True) for c in tag.find_all(["td", "th"])]
        tag.replace_with("\n" + " | ".join(c for c in cells if c) + "\n")
    for tag in root.find_all(_HTML_BLOCK_TAGS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")


# ---- pdf --------------------------------------------------------------------
def read_pdf(data: bytes, name: str) -> str:
    import pypdf
    from pypdf import PdfReader

    from . import MAX_PDF_PAGES, MAX_TEXT_CHARS, MAX_UNPACKED_BYTES

    # pypdf's own caps on what a stream may decompress to, lowered to ours for this read.
    caps = {k: MAX_UNPACKED_BYTES for k in (
        "maximum_declared_stream_length", "array_based_stream_maximum_output_length", "lzw_maximum_output_length",
        "run_length_maximum_output_length", "zlib_maximum_output_length", "image_maximum_buffer_size",
        "brotli_maximum_output_length", "jbig2_maximum_output_length") if hasattr(pypdf.Configuration, k)}
    with pypdf.apply_configuration(**caps):
        return _read_pdf(PdfReader, data, name)


def _read_pdf(PdfReader, data: bytes, name: str) -> str:
    import pypdf

    from . import MAX_PDF_PAGES, MAX_TEXT_CHARS, MAX_UNPACKED_BYTES

    # pypdf raises many exception types on damaged files (PdfReadError, ValueError,
    # KeyError, struct.error ...); whatever the parser trips on, the user's fix is the same.
    try:
        with _quiet("pypdf"):
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise IngestError(f"{name} is password-protected; save an unprotected copy and try again.")
            if len(reader.pages) > MAX_PDF_PAGES:
                raise IngestError(f"{name} has {len(reader.pages)} pages, over the {MAX_PDF_PAGES}-page limit; "
                                  "split it into smaller files.")
            texts, total = [], 0
            for page in reader.pages:
                text = page.extract_text() or ""
                total += len(text)
                if total > MAX_TEXT_CHARS:
                    raise IngestError(f"{name} holds over {MAX_TEXT_CHARS:,} characters of text; split it into smaller files.")
                texts.append(text)
            return "\n\n".join(texts)
    except IngestError:
        raise
    except pypdf.errors.LimitReachedError:
        raise IngestError(f"{name} has a part that unpacks to more than {MAX_UNPACKED_BYTES // 2**20} MB; "
                          "re-export it or save it as text.") from None
    except Exception:
        raise IngestError(f"{name} is not a readable PDF (it may be damaged); re-export it or save it as text.") from None


@contextmanager
def _quiet(logger_name: str):
    """Mute a parser's warnings ("EOF marker not found"): the user gets one IngestError sentence instead."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR + 10)
    try:
        yield
    finally:
        logger.setLevel(level)


# ---- docx -------------------------------------------------------------------
def read_docx(data: bytes, name: str) -> str:
    import docx

    _check_docx_package(data, name)
    # Like pypdf, python-docx fails in many ways on a damaged archive (BadZipFile,
    # PackageNotFoundError, KeyError, XML errors); the user's fix is the same for all.
    try:
        document = docx.Document(io.BytesIO(data))
        blocks = [_docx_block(item) for item in document.iter_inner_content()]
    except Exception:
        raise IngestError(f"{name} is not a readable Word document (it may be damaged); re-save it as .docx.") from None
    return "\n\n".join(b for b in blocks if b)


def _check_docx_package(data: bytes, name: str) -> None:
    """Refuse, before parsing, a package that unpacks to more than ``MAX_UNPACKED_BYTES`` or whose body
    has more than ``MAX_PARAGRAPHS`` paragraphs (a few KB of zip can hold millions of empty ones)."""
    import zipfile

    from . import MAX_PARAGRAPHS, MAX_UNPACKED_BYTES

    too_big = IngestError(f"{name} unpacks to more than {MAX_UNPACKED_BYTES // 2**20} MB; "
                          "save a smaller copy or split it into smaller files.")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            if sum(info.file_size for info in package.infolist()) > MAX_UNPACKED_BYTES:
                raise too_big
            # zipfile stops each member at its declared size, so the sum above bounds what is read
            with package.open("word/document.xml") as body:
                paragraphs, tail = 0, b""
                while block := body.read(1 << 20):
                    window = tail + block  # a tag cut by the block boundary is counted once, here
                    paragraphs += sum(1 for m in _W_P.finditer(window) if m.end() > len(tail))
                    tail = window[-4:]
                    if paragraphs > MAX_PARAGRAPHS:
                        raise IngestError(f"{name} has over {MAX_PARAGRAPHS:,} paragraphs; split it into smaller files.")
    except IngestError:
        raise
    except Exception:
        raise IngestError(f"{name} is not a readable Word document (it may be damaged); re-save it as .docx.") from None


def _docx_block(item) -> str:
    """One paragraph (``#`` for headings, ``-`` for list items) or one table (a row per line)."""
    if hasattr(item, "rows"):
        return "\n".join(_docx_row(row) for row in item.rows)
    text = item.text.strip()
    style = (item.style.name if item.style is not None else "") or ""
    if not text:
        return ""
    heading = _DOCX_HEADING.match(style.strip())
    if heading or style == "Title":
        return "#" * int(heading.group(1) if heading else 1) + " " + text
    # Word marks list paragraphs by style ("List Bullet") or by direct numbering properties.
    numbered = item._p.pPr is not None and item._p.pPr.numPr is not None
    if style.startswith("List") or numbered:
        return "- " + text
    return text


def _docx_row(row) -> str:
    cells: list[str] = []
    for cell in row.cells:
        text = " ".join(cell.text.split())
        # A merged cell is reported once per grid column it spans.
        if text and (not cells or cells[-1] != text):
            cells.append(text)
    return " | ".join(cells)
