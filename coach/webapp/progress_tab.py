"""进度: history, per-topic progress and the review button."""

from __future__ import annotations


import gradio as gr

from ..errors import CoachError
from ..service import Coach
from ..strings import t, use_language
from .common import PageText, bank_question, english, space_of, topic_name, warn
from .render import escape_html, local_time


def progress_tables(coach: Coach) -> dict:
    import pandas as pd

    data = coach.progress()
    score = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    statuses = t("progress.status")
    # sessions are numbered in the order they happened (the chart's x-axis): dates repeat within a day
    order = {s.id: n for n, s in enumerate(sorted(data["sessions"], key=lambda s: (s.started_at, s.id)), 1)}
    name = lambda topic: topic_name(coach, topic)  # noqa: E731
    # the chart's columns are fixed names: its axis titles say them in the page's language
    timeline = pd.DataFrame(
        [(order[sid], name(topic), round(mean, 1)) for sid, topic, mean in data["timeline"] if sid in order],
        columns=["session", "topic", "score"])
    table = lambda rows, *keys: pd.DataFrame(rows, columns=[t(f"progress.{k}") for k in keys])  # noqa: E731
    return {
        "timeline": timeline.sort_values("session"),
        "topics": table([[name(p.topic), p.answers, score(p.mean_score), score(p.recent_score), p.due]
                         for p in data["topics"]], "col_topic", "col_answers", "col_mean", "col_recent", "col_due"),
        "due": table([[bank_question(d.item), name(d.item.topic), local_time(d.due)] for d in data["due"]],
                     "col_item", "col_topic", "col_due_at"),
        "sessions": table([[order[s.id], local_time(s.started_at),
                            statuses["practice"] if s.mode == "grade" else statuses.get(s.status, s.status), s.questions,
                            score(s.mean_score), (", " if english() else "、").join(
                                name(x) for x in s.topics)] for s in data["sessions"]],
                          "col_number", "col_started", "col_status", "col_questions", "col_mean", "col_topics"),
        "ids": [s.id for s in data["sessions"]],
    }


def sessions_label() -> str:
    hint = t("progress.open_hint")
    return f"{t('progress.sessions')} ({hint})" if english() else f"{t('progress.sessions')}（{hint}）"


def progress_tab(coach: Coach, app, tab, tabs, interview: dict, lang: gr.Radio, texts: PageText) -> None:
    with gr.Row():
        texts.add(gr.Markdown(t("progress.intro"), elem_id="progress-intro"), value="progress.intro")
        refresh = gr.Button(t("progress.refresh"), size="sm", scale=0, min_width=90, elem_id="progress-refresh")
    empty = gr.Markdown(visible=False, elem_id="progress-empty")
    with gr.Row():
        chart = gr.LinePlot(x="session", y="score", color="topic", x_title=t("progress.chart_session"),
                            y_title=t("progress.chart_score"), color_title=t("progress.chart_topic"),
                            y_lim=[0, 10], label=t("progress.chart"), scale=3, elem_id="progress-chart")
        topics = gr.Dataframe(headers=[t("progress.col_topic"), t("progress.col_answers"), t("progress.col_mean"),
                                       t("progress.col_recent"), t("progress.col_due")],
                              interactive=False, label=t("progress.topics"), scale=2, elem_id="progress-topics")
    with gr.Row():
        with gr.Column(scale=3):
            due = gr.Dataframe(headers=[t("progress.col_item"), t("progress.col_topic"), t("progress.col_due_at")],
                               interactive=False, label=t("progress.due"), max_height=260, elem_id="progress-due")
        review = gr.Button(t("progress.review_none"), variant="primary", scale=1, interactive=False,
                           elem_id="progress-review")
    ids = gr.State([])
    sessions = gr.Dataframe(headers=[t("progress.col_number"), t("progress.col_started"), t("progress.col_status"),
                                     t("progress.col_questions"), t("progress.col_mean"), t("progress.col_topics")],
                            interactive=False, label=sessions_label(), max_height=300,
                            elem_id="progress-sessions")
    with gr.Column(visible=False, elem_id="progress-report-box") as report_box:
        report = gr.Markdown(elem_id="progress-report")
        with gr.Row():
            download = gr.DownloadButton(t("interview.download"), elem_id="progress-download")
            download_pdf = gr.DownloadButton(t("interview.download_pdf"), elem_id="progress-download-pdf")
    texts.add(refresh, value="progress.refresh")
    texts.add(chart, label="progress.chart", x_title="progress.chart_session", y_title="progress.chart_score",
              color_title="progress.chart_topic")
    texts.add(topics, label="progress.topics")
    texts.add(due, label="progress.due")
    texts.add(sessions, label=sessions_label)
    texts.add(download, label="interview.download")
    texts.add(download_pdf, label="interview.download_pdf")

    def load(request: gr.Request, page_lang: str = "zh"):
        with use_language(page_lang):
            return _load(request)

    def _load(request):
        try:
            data = progress_tables(space_of(coach, request))
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        n = len(data["due"])
        button = gr.Button(t("progress.review", n=n) if n else t("progress.review_none"), interactive=bool(n))
        note = gr.Markdown(t("progress.no_history"), visible=data["sessions"].empty)
        return note, data["timeline"], data["topics"], data["due"], button, data["sessions"], data["ids"]

    def open_report(request: gr.Request, session_ids: list, evt: gr.SelectData):
        """Clicking a past session shows its report, with both downloads."""
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if not isinstance(row, int) or not 0 <= row < len(session_ids):
            return gr.skip()
        try:
            space = space_of(coach, request)
            result = space.session_report(session_ids[row])
            markdown_path, pdf_path = space.save_report(result)
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        return (gr.Column(visible=True), escape_html(result.to_markdown()), gr.DownloadButton(value=str(markdown_path)),
                gr.DownloadButton(value=str(pdf_path)))

    def start_review(request: gr.Request, page_lang: str = "zh"):
        try:
            due_now = len(space_of(coach, request).progress()["due"])
        except CoachError as exc:
            with use_language(page_lang):
                warn(exc)
            return gr.skip()
        if not due_now:
            with use_language(page_lang):
                gr.Warning(t("progress.no_due"), title=t("warning_title"))
            return gr.skip()
        from ..interview import MAX_QUESTIONS

        started = interview["begin"](request, [], "adaptive", min(due_now, MAX_QUESTIONS), 0, page_lang, review=True)
        return started if isinstance(started, dict) else (*started, gr.Tabs(selected="interview"))

    shown = [empty, chart, topics, due, review, sessions, ids]
    gr.on([refresh.click, tab.select, app.load], load, lang, shown, api_visibility="private", show_progress="hidden")
    texts.refresh(load, [], shown)
    sessions.select(open_report, ids, [report_box, report, download, download_pdf], api_visibility="private")
    review.click(start_review, lang, [*interview["outputs"], tabs], api_visibility="private")
