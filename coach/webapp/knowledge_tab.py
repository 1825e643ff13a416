"""知识库: uploads, the document list and the bank browser.

Everything that can change while the server runs (the document list, the remove dropdown, the
header's document count) is read from the server when a page loads, so a reload shows the
knowledge base as it is, not as it was when the page was built.
"""

from __future__ import annotations

import html
from pathlib import Path

import gradio as gr

from ..config import env_flag
from ..errors import CoachError
from ..limits import MAX_UPLOAD_MB, check_query
from ..service import Coach
from ..strings import difficulty_name, t, use_language
from .common import PageText, bank_question, space_of, topic_name, warn
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
    return [[bank_question(i), topic_name(coach, i.topic), difficulty_name(i.difficulty), i.id] for i in items]



def bank_table(rows: list[list]):
    """The bank table with its headers in the page's language."""
    import pandas as pd

    return pd.DataFrame(rows, columns=[t("kb.col_question"), t("kb.col_topic"), t("kb.col_difficulty"),
                                       t("kb.col_id")])



def sources_table(coach: Coach):
    import pandas as pd

    return pd.DataFrame(coach.source_rows(), columns=[t("kb.col_source"), t("kb.col_chunks")])



def item_markdown(coach: Coach, item_id: str) -> str:
    item = coach.kb.bank.get(item_id)
    points = "\n".join(f"- {kp.point}" for kp in item.key_points)
    note = "\n\n" + t("reference_note") if item.question_en and bank_question(item) == item.question_en else ""
    return t("kb.item_detail", question=bank_question(item), id=item.id, topic=topic_name(coach, item.topic),
             difficulty=difficulty_name(item.difficulty), answer=item.answer.strip(), points=points) + note



REBUILD_ENV = "COACH_WEB_REBUILD"  # 1/true/yes/on: show 「重建索引」 (an operator's tool; hidden by default)



def rebuild_enabled() -> bool:
    return env_flag(REBUILD_ENV)



def upload_css() -> str:
    """Gradio words the empty drop zone in the browser's language ("Drop File Here" in an English
    browser); show the strings file's Chinese instead, whatever the browser's language."""
    def hint(lang: str) -> str:
        return t("kb.drop_hint", lang=lang).replace("\\", "\\\\").replace('"', '\\"')

    return (f'#kb-files [data-testid=upload-text] {{ font-size: 0 !important; }}\n'
            f'#kb-files [data-testid=upload-text] .or {{ display: none; }}\n'
            f'#kb-files [data-testid=upload-text]::after {{ content: "{hint("zh")}"; font-size: var(--text-md); }}\n'
            f'body.coach-en #kb-files [data-testid=upload-text]::after {{ content: "{hint("en")}" !important; }}')



def knowledge_tab(coach: Coach, header, app: gr.Blocks, lang: gr.Radio, texts: PageText) -> None:
    texts.add(gr.Markdown(t("kb.intro", mb=MAX_UPLOAD_MB), elem_id="kb-intro"),
              value=lambda: t("kb.intro", mb=MAX_UPLOAD_MB))
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
            rebuild_info = gr.Markdown(t("kb.rebuild_info"), visible=show_rebuild, elem_id="kb-rebuild-info")
    texts.add(files, label="kb.upload")
    texts.add(replace, label="kb.replace")
    texts.add(add, value="kb.add")
    texts.add(table, label="kb.sources")
    texts.add(pick, label="kb.remove_pick")
    texts.add(remove, value="kb.remove")
    texts.add(rebuild, value="kb.rebuild")
    texts.add(rebuild_info, value="kb.rebuild_info")
    listing = [table, pick, header]

    def listed(request: gr.Request, page_lang: str = "zh"):
        """This person's documents (the ones they may remove) and the header's counts."""
        with use_language(page_lang):
            try:
                space = space_of(coach, request)
            except CoachError as exc:
                warn(exc)
                return gr.skip(), gr.skip(), gr.skip()
            return _listed(space)

    def _listed(space):
        names = sorted(space.kb.sources())
        return sources_table(space), gr.Dropdown(choices=names, value=None), t("header", summary=space.summary())

    texts.refresh(listed, [], listing)

    def upload(request: gr.Request, paths, replace_same, page_lang: str = "zh", progress=gr.Progress()):
        with use_language(page_lang):
            return _upload(request, paths, replace_same, progress)

    def _upload(request, paths, replace_same, progress):
        if not paths:
            gr.Warning(t("kb.no_files"), title=t("warning_title"))
            return gr.skip()
        try:
            space = space_of(coach, request)
            report = space.add_documents([Path(p) for p in paths], progress, replace=bool(replace_same))
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        return report_markdown(report), None, *_listed(space)

    def drop(request: gr.Request, name, page_lang: str = "zh"):
        with use_language(page_lang):
            return _drop(request, name)

    def _drop(request, name):
        if not name:
            gr.Warning(t("kb.pick_source"), title=t("warning_title"))
            return gr.skip()
        try:
            space = space_of(coach, request)
            removed = space.remove_document(name)
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        return t("kb.removed", name=html.escape(name), chunks=removed), *_listed(space)

    def rebuild_index(page_lang: str = "zh", progress=gr.Progress()):
        with use_language(page_lang):
            return _rebuild_index(progress)

    def _rebuild_index(progress):
        # the operator's button (COACH_SHOW_REBUILD): the shared index, whoever is signed in
        try:
            counts = coach.rebuild(progress)
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        return t("kb.rebuilt", bank=counts["bank_units"], docs=counts["doc_units"]), *_listed(coach)

    add.click(upload, [files, replace, lang], [result, files, *listing], api_visibility="private")
    remove.click(drop, [pick, lang], [result, *listing], api_visibility="private")
    rebuild.click(rebuild_index, lang, [result, *listing], api_visibility="private")
    # a reloaded page shows the documents as they are now (the page itself was built at start-up)
    app.load(listed, lang, listing, api_visibility="private", show_progress="hidden")
    browse_bank(coach, lang, texts)



def browse_bank(coach: Coach, lang: gr.Radio, texts: PageText) -> None:
    texts.add(gr.Markdown("### " + t("kb.browse"), elem_id="bank-heading"), value=lambda: "### " + t("kb.browse"))

    def topic_options():
        return [(t("kb.all"), "")] + [(topic_name(coach, tp.id), tp.id) for tp in coach.kb.bank.topics.values()]

    def level_options():
        return [(t("kb.all"), "")] + [(difficulty_name(d), str(d)) for d in (1, 2, 3)]

    with gr.Row():
        topic = gr.Dropdown(topic_options(), value="", label=t("kb.browse_topic"), scale=1, elem_id="bank-topic")
        level = gr.Radio(level_options(), value="", label=t("kb.browse_difficulty"), scale=1, elem_id="bank-level")
        query = gr.Textbox(label=t("kb.browse_search"), placeholder=t("kb.browse_search_placeholder"), scale=2,
                           elem_id="bank-search")
    with gr.Row():
        # the question first: the id is for reference only, last
        rows = gr.Dataframe(bank_rows(coach), headers=[t("kb.col_question"), t("kb.col_topic"),
                                                       t("kb.col_difficulty"), t("kb.col_id")],
                            interactive=False, max_height=360, column_widths=["58%", "12%", "8%", "22%"],
                            scale=3, elem_id="bank-table")
        detail = gr.Markdown(t("kb.pick_item"), elem_id="bank-detail")
    texts.add(topic, label="kb.browse_topic", choices=topic_options)
    texts.add(level, label="kb.browse_difficulty", choices=level_options)
    texts.add(query, label="kb.browse_search", placeholder="kb.browse_search_placeholder")
    texts.default(detail, "kb.pick_item")

    def filtered(topic_id, difficulty, text, page_lang: str = "zh"):
        with use_language(page_lang):
            try:
                return bank_table(bank_rows(coach, topic_id, difficulty, text))
            except CoachError as exc:
                warn(exc)
                return gr.skip()

    def show(page_lang: str, evt: gr.SelectData):
        row = getattr(evt, "row_value", None) or []
        with use_language(page_lang):
            return item_markdown(coach, row[-1]) if row and row[-1] in coach.kb.bank.items else gr.skip()

    gr.on([topic.change, level.change, query.submit], filtered, [topic, level, query, lang], rows,
          api_visibility="private", show_progress="hidden")
    texts.refresh(filtered, [topic, level, query], [rows])
    rows.select(show, lang, detail, api_visibility="private", show_progress="hidden")

