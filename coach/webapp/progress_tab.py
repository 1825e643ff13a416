"""进度: history, per-topic progress and the review button."""

from __future__ import annotations


import gradio as gr

from ..errors import CoachError
from ..service import Coach
from ..strings import t
from .common import warn
from .render import local_time


def progress_tables(coach: Coach) -> dict:
    import pandas as pd

    data = coach.progress()
    score = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    statuses = t("progress.status")
    timeline = pd.DataFrame(
        [(pd.Timestamp(when.astimezone().replace(tzinfo=None)), coach.topic_name(topic), round(mean, 1))
         for when, topic, mean in data["timeline"]],
        columns=[t("progress.chart_time"), t("progress.chart_topic"), t("progress.chart_score")])
    return {
        "timeline": timeline,
        "topics": [[coach.topic_name(p.topic), p.answers, score(p.mean_score), score(p.recent_score), p.due]
                   for p in data["topics"]],
        "due": [[d.item.question, coach.topic_name(d.item.topic), local_time(d.due)] for d in data["due"]],
        "sessions": [[local_time(s.started_at), statuses.get(s.status, s.status), s.questions, score(s.mean_score),
                      "、".join(coach.topic_name(x) for x in s.topics)] for s in data["sessions"]],
    }



def progress_tab(coach: Coach, app, tab, tabs, interview: dict) -> None:
    with gr.Row():
        gr.Markdown(t("progress.intro"))
        refresh = gr.Button(t("progress.refresh"), size="sm", scale=0, min_width=90, elem_id="progress-refresh")
    empty = gr.Markdown(visible=False, elem_id="progress-empty")
    with gr.Row():
        chart = gr.LinePlot(x=t("progress.chart_time"), y=t("progress.chart_score"), color=t("progress.chart_topic"),
                            y_lim=[0, 10], x_axis_format="%m-%d", label=t("progress.chart"), scale=3,
                            elem_id="progress-chart")
        topics = gr.Dataframe(headers=[t("progress.col_topic"), t("progress.col_answers"), t("progress.col_mean"),
                                       t("progress.col_recent"), t("progress.col_due")],
                              interactive=False, label=t("progress.topics"), scale=2, elem_id="progress-topics")
    with gr.Row():
        with gr.Column(scale=3):
            due = gr.Dataframe(headers=[t("progress.col_item"), t("progress.col_topic"), t("progress.col_due_at")],
                               interactive=False, label=t("progress.due"), max_height=260, elem_id="progress-due")
        review = gr.Button(t("progress.review_none"), variant="primary", scale=1, interactive=False,
                           elem_id="progress-review")
    sessions = gr.Dataframe(headers=[t("progress.col_started"), t("progress.col_status"),
                                     t("progress.col_questions"), t("progress.col_mean"), t("progress.col_topics")],
                            interactive=False, label=t("progress.sessions"), max_height=300,
                            elem_id="progress-sessions")

    def load():
        try:
            data = progress_tables(coach)
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        n = len(data["due"])
        button = gr.Button(t("progress.review", n=n) if n else t("progress.review_none"), interactive=bool(n))
        note = gr.Markdown(t("progress.no_history"), visible=not data["sessions"])
        return note, data["timeline"], data["topics"], data["due"], button, data["sessions"]

    def start_review():
        due_now = len(coach.progress()["due"])
        if not due_now:
            gr.Warning(t("progress.no_due"), title=t("warning_title"))
            return gr.skip()
        from ..interview import MAX_QUESTIONS

        started = interview["begin"]([], "adaptive", min(due_now, MAX_QUESTIONS), 0, review=True)
        return started if isinstance(started, dict) else (*started, gr.Tabs(selected="interview"))

    gr.on([refresh.click, tab.select, app.load], load, None, [empty, chart, topics, due, review, sessions],
          api_visibility="private", show_progress="hidden")
    review.click(start_review, None, [*interview["outputs"], tabs], api_visibility="private")

