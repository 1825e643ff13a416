"""Questions drafted by a model from notes that have none, kept apart until the user accepts them.

Notes written as prose (no "问题? 答案" structure) give the coach nothing to
interview or grade from. With a model configured, ``coach ingest --draft-questions``
asks it for bank-style items (question, key points, reference answer) drawn
from the document, validates them (``llm.draft_items``) and saves them as a
*draft* in the coach's home folder; nothing is used yet. ``coach drafts show``
prints a draft for review; ``coach drafts accept`` turns it into a Markdown
Q&A document marked as drafted by a model (its name starts with ``AI草稿·``,
its first line says who drafted it from what) and ingests that, so its
questions join "my documents" in the interview and are graded against their
key points, with the source cited. ``coach drafts discard`` deletes a draft.

Draft files are named by a hash of the document's name: a document's name
(which a user or an upload chose) never becomes a path.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import CoachError

FORMAT, VERSION = "coach-drafts", 1
PREFIX = "AI草稿·"
MAX_TEXT = 8000  # characters of a document the model reads


@dataclass
class Draft:
    source: str
    model: str
    created: str
    items: list[dict]

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "source": self.source, "model": self.model,
                "created": self.created, "items": self.items}


def folder(settings) -> Path:
    return Path(settings.home) / "drafts"


def _path(settings, source: str) -> Path:
    return folder(settings) / f"{hashlib.sha256(source.encode()).hexdigest()[:20]}.json"


def load(settings, source: str) -> Draft:
    path = _path(settings, source)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CoachError(f"There is no draft for {source!r}; see `coach drafts list`.") from None
    except (OSError, ValueError):
        raise CoachError(f"The draft for {source!r} is damaged; discard it with `coach drafts discard`.") from None
    if data.get("format") != FORMAT or data.get("version") != VERSION or not isinstance(data.get("items"), list):
        raise CoachError(f"The draft for {source!r} is from another version; discard it and draft again.")
    return Draft(str(data["source"]), str(data.get("model", "")), str(data.get("created", "")), data["items"])


def list_drafts(settings) -> list[Draft]:
    out = []
    for path in sorted(folder(settings).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") == FORMAT:
                out.append(Draft(str(data["source"]), str(data.get("model", "")), str(data.get("created", "")),
                                 list(data.get("items", []))))
        except (OSError, ValueError, KeyError):
            continue
    return out


def save(settings, draft: Draft) -> Path:
    path = _path(settings, draft.source)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(draft.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(path)
    return path


def draft_documents(kb, llm, sources: list[str]) -> tuple[list[Draft], dict[str, str]]:
    """Drafts for each of ``sources`` (indexed documents) that has no Q&A pairs of its own.

    Returns the drafts saved and, per document skipped, why (it has questions, or the model failed)."""
    from .llm import LLMUnavailable, draft_items

    units = [u for u in kb.data.units if u.kind == "doc"]
    drafts, skipped = [], {}
    for source in sources:
        chunks = sorted((u for u in units if u.source == source), key=lambda u: u.position)
        if not chunks:
            skipped[source] = "not in the index"
            continue
        if any(u.chunk_kind == "qa" for u in chunks):
            skipped[source] = "it already has questions with answers; they are used as they are"
            continue
        text = "\n\n".join(u.text for u in chunks)[:MAX_TEXT]
        try:
            items = draft_items(llm, text)
        except LLMUnavailable as exc:
            skipped[source] = f"the model could not draft questions ({exc})"
            continue
        draft = Draft(source, llm.id, time.strftime("%Y-%m-%d %H:%M"), items)
        save(kb.settings, draft)
        drafts.append(draft)
    return drafts, skipped


def as_markdown(draft: Draft) -> str:
    """The accepted draft as a Q&A document: each question a heading, its answer, its key points as a list."""
    from .ingest.qa import is_question

    lines = [f"# {PREFIX}{draft.source}", "",
             f"> 由大模型 {draft.model} 根据「{draft.source}」起草（{draft.created}），经你确认后加入。", ""]
    for item in draft.items:
        question = item["question"].strip()
        if not is_question(question):
            question += "？"
        lines += [f"## {question}", "", item["answer"].strip(), "", "要点："]
        lines += [f"- {p}" for p in item["key_points"]] + [""]
    return "\n".join(lines)


def accept(kb, source: str):
    """Ingest the draft for ``source`` as a document named ``AI草稿·<source>``; the draft is then removed."""
    draft = load(kb.settings, source)
    accepted = folder(kb.settings) / "accepted"
    accepted.mkdir(parents=True, exist_ok=True)
    path = accepted / (_path(kb.settings, source).stem + ".md")
    path.write_text(as_markdown(draft), encoding="utf-8")
    report = kb.ingest([path], replace=True, names={path: PREFIX + source})
    if not report.errors:
        _path(kb.settings, source).unlink(missing_ok=True)
    return report


def discard(settings, source: str) -> None:
    path = _path(settings, source)
    if not path.exists():
        raise CoachError(f"There is no draft for {source!r}; see `coach drafts list`.")
    path.unlink()
