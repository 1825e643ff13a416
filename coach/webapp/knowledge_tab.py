"""知识库: uploads, the document list and the bank browser.

Everything that can change while the server runs (the document list, the remove dropdown, the
header's document count) is read from the server when a page loads, so a reload shows the
knowledge base as it is, not as it was when the page was built.
"""

from __future__ import annotations

import html
from pathlib import Path

import gradio as gr

from ..config import _flag
from ..errors import CoachError
from ..limits import MAX_UPLOAD_MB, check_query
from ..service import Coach
from ..strings import difficulty_name, t
from .common import warn
from .render import report_markdown





def bank_rows(coach: Coach, topic: str = "", level: str = "", query: str = "") -> list[list]:
    """Bank items filtered by topic and difficulty; a query matches text first, then meaning."""
    items = [i for i in coach.kb.bank.items.values()
             if (not topic or i.topic == topic) and (not level or str(i.difficulty) == str(level))]
    query = (query or "").strip().lower()
    if query:
        matched = [i for i in items if query in " ".join([i.id, *i.all_questions, *i.tags]).lower()]
        if not matched:
            allowed = {i.id: i for i in items}
            hits = coach.kb.search(check_query(query), k=10, kind="bank")
            matched = [allowed[h.item_id] for h in hits if h.item_id in allowed]
        items = matched
    return [[i.question, coach.topic_name(i.topic), difficulty_name(i.difficulty), i.id] for i in items]



def item_markdown(coach: Coach, item_id: str) -> str:
    item = coach.kb.bank.get(item_id)
    points = "\n".join(f"- {kp.point}" for kp in item.key_points)
    return t("kb.item_detail", question=item.question, id=item.id, topic=coach.topic_name(item.topic),
             difficulty=difficulty_name(item.difficulty), answer=item.answer.strip(), points=points)



REBUILD_ENV = "COACH_WEB_REBUILD"  # 1/true/yes/on: show 「重建索引」 (an operator's tool; hidden by default)



def rebuild_enabled() -> bool:
    return _flag(REBUILD_ENV)



def upload_css() -> str:
    """Gradio words the empty drop zone in the browser's language ("Drop File Here" in an English
    browser); show the strings file's Chinese instead, whatever the browser's language."""
    hint = t("kb.drop_hint").replace("\\", "\\\\").replace('"', '\\"')
    return (f'#kb-files [data-testid=upload-text] {{ font-size: 0 !important; }}\n'
            f'#kb-files [data-testid=upload-text] .or {{ display: none; }}\n'
            f'#kb-files [data-testid=upload-text]::after {{ content: "{hint}"; font-size: var(--text-md); }}')



def knowledge_tab(coach: Coach, header, app: gr.Blocks) -> None:
    gr.Markdown(t("kb.intro", mb=MAX_UPLOAD_MB))
    with gr.Row():
        with gr.Column(scale=3):
            # no file_types filter here: the browser's own rejection is in English; upload_problem() says it in Chinese
            files = gr.File(label=t("kb.upload"), file_count="multiple", height=150, elem_id="kb-files")
            replace = gr.Checkbox(False, label=t("kb.replace"), elem_id="kb-replace")
            add = gr.Button(t("kb.add"), variant="primary", elem_id="kb-add")
            result = gr.Markdown(elem_id="kb-result")
        with gr.Column(scale=2):
            table = gr.Dataframe(coach.source_rows(), headers=[t("kb.col_source"), t("kb.col_chunks")],
                                 interactive=False, label=t("kb.sources"), max_height=260, elem_id="kb-sources")
            with gr.Row():
                pick = gr.Dropdown(sorted(coach.kb.sources()), value=None, label=t("kb.remove_pick"), scale=3,
                                   elem_id="kb-remove-pick")
                remove = gr.Button(t("kb.remove"), variant="stop", scale=1, min_width=80, elem_id="kb-remove")
            show_rebuild = rebuild_enabled()
            rebuild = gr.Button(t("kb.rebuild"), size="sm", visible=show_rebuild, elem_id="kb-rebuild")
            gr.Markdown(t("kb.rebuild_info"), visible=show_rebuild, elem_id="kb-rebuild-info")
    listing = [table, pick, header]

    def listed():
        names = sorted(coach.kb.sources())
        return coach.source_rows(), gr.Dropdown(choices=names, value=None), t("header", summary=coach.summary())

    def upload(paths, replace_same, progress=gr.Progress()):
        if not paths:
            gr.Warning(t("kb.no_files"), title=t("warning_title"))
            return gr.skip()
        try:
            report = coach.add_documents([Path(p) for p in paths], progress, replace=bool(replace_same))
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        return report_markdown(report), None, *listed()

    def drop(name):
        if not name:
            gr.Warning(t("kb.pick_source"), title=t("warning_title"))
            return gr.skip()
        try:
            removed = coach.remove_document(name)
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        return t("kb.removed", name=html.escape(name), chunks=removed), *listed()

    def rebuild_index(progress=gr.Progress()):
        try:
            counts = coach.rebuild(progress)
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        return t("kb.rebuilt", bank=counts["bank_units"], docs=counts["doc_units"]), *listed()

    add.click(upload, [files, replace], [result, files, *listing], api_visibility="private")
    remove.click(drop, pick, [result, *listing], api_visibility="private")
    rebuild.click(rebuild_index, None, [result, *listing], api_visibility="private")
    # a reloaded page shows the documents as they are now (the page itself was built at start-up)
    app.load(listed, None, listing, api_visibility="private", show_progress="hidden")
    browse_bank(coach)



def browse_bank(coach: Coach) -> None:
    gr.Markdown("### " + t("kb.browse"))
    with gr.Row():
        topic = gr.Dropdown([(t("kb.all"), "")] + [(tp.zh, tp.id) for tp in coach.kb.bank.topics.values()],
                            value="", label=t("kb.browse_topic"), scale=1, elem_id="bank-topic")
        level = gr.Radio([(t("kb.all"), "")] + [(difficulty_name(d), str(d)) for d in (1, 2, 3)], value="",
                         label=t("kb.browse_difficulty"), scale=1, elem_id="bank-level")
        query = gr.Textbox(label=t("kb.browse_search"), placeholder=t("kb.browse_search_placeholder"), scale=2,
                           elem_id="bank-search")
    with gr.Row():
        # the question first: the id is for reference only, last
        rows = gr.Dataframe(bank_rows(coach), headers=[t("kb.col_question"), t("kb.col_topic"),
                                                       t("kb.col_difficulty"), t("kb.col_id")],
                            interactive=False, max_height=360, column_widths=["58%", "12%", "8%", "22%"],
                            scale=3, elem_id="bank-table")
        detail = gr.Markdown(t("kb.pick_item"), elem_id="bank-detail")

    def filtered(topic_id, difficulty, text):
        try:
            return bank_rows(coach, topic_id, difficulty, text)
        except CoachError as exc:
            warn(exc)
            return gr.skip()

    def show(evt: gr.SelectData):
        row = getattr(evt, "row_value", None) or []
        return item_markdown(coach, row[-1]) if row and row[-1] in coach.kb.bank.items else gr.skip()

    gr.on([topic.change, level.change, query.submit], filtered, [topic, level, query], rows,
          api_visibility="private", show_progress="hidden")
    rows.select(show, None, detail, api_visibility="private", show_progress="hidden")

