"""模拟面试: the mock-interview tab."""

from __future__ import annotations


import gradio as gr

from ..errors import CoachError
from ..service import Coach
from ..strings import t
from .common import warn
from .render import countdown_markdown, interview_config, question_markdown, turn_markdown


def topic_frame(coach: Coach, report):
    import pandas as pd

    scores = report.topic_scores()
    return pd.DataFrame({t("interview.chart_topic"): [coach.topic_name(k) for k in scores],
                         t("interview.chart_score"): [mean for mean, _ in scores.values()]})



def interview_tab(coach: Coach) -> dict:
    """The interview form and its handlers; returns what the progress tab needs to start a review."""
    def abandon(view: dict) -> None:
        """The browser tab went away mid-interview: record the session as stopped early."""
        if view and view.get("session") and not view.get("done"):
            try:
                coach.stop_interview(view["session"])
            except CoachError:
                pass

    gr.Markdown(t("interview.intro"))
    state = gr.State({"session": None}, delete_callback=abandon)
    timer = gr.Timer(1.0, active=False)
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            topics = gr.Dropdown(coach.topic_choices(), value=[],
                                 multiselect=True, label=t("interview.topics"), elem_id="iv-topics")
            level = gr.Radio([tuple(c) for c in t("interview.difficulty_choices")], value="adaptive",
                             label=t("interview.difficulty"), elem_id="iv-level")
            count = gr.Slider(1, 10, value=3, step=1, label=t("interview.questions"), elem_id="iv-count")
            limit = gr.Dropdown([tuple(c) for c in t("interview.timer_choices")], value=0,
                                label=t("interview.timer"), elem_id="iv-limit")
            start = gr.Button(t("interview.start"), variant="primary", elem_id="iv-start")
            stop = gr.Button(t("interview.stop"), variant="stop", size="sm", elem_id="iv-stop")
        with gr.Column(scale=2):
            banner = gr.Markdown(elem_id="iv-banner")
            question = gr.Markdown(t("interview.not_started"), elem_id="iv-question")
            countdown = gr.Markdown(elem_id="iv-countdown")
            answer = gr.Textbox(label=t("interview.answer"), placeholder=t("interview.answer_placeholder"), lines=6,
                                elem_id="iv-answer")
            with gr.Row():
                submit = gr.Button(t("interview.submit"), variant="primary", elem_id="iv-submit")
                skip = gr.Button(t("interview.skip"), elem_id="iv-skip")
            graded = gr.Markdown(elem_id="iv-grade")
    with gr.Column(visible=False, elem_id="iv-report-box") as report_box:
        with gr.Row():
            report = gr.Markdown(elem_id="iv-report")
            with gr.Column():
                plot = gr.BarPlot(x=t("interview.chart_topic"), y=t("interview.chart_score"), y_lim=[0, 10],
                                  label=t("interview.chart"), height=280, elem_id="iv-chart")
                download = gr.DownloadButton(t("interview.download"), visible=False, elem_id="iv-download")
    outputs = [state, banner, question, countdown, timer, answer, graded, report_box, report, plot, download]

    def finished(view: dict, last: str):
        result = coach.interview_report(view["session"])
        path = coach.save_report(result)
        return ({**view, "deadline": None, "done": True}, "", t("interview.finished"), "", gr.Timer(active=False),
                "", last, gr.Column(visible=True), result.to_markdown(), topic_frame(coach, result),
                gr.DownloadButton(value=str(path), visible=True))

    def begin(topic_ids, difficulty, questions, seconds, review: bool = False):
        try:
            session_id, first = coach.start_interview(
                interview_config(topic_ids, difficulty, questions, seconds, review))
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        view = {"session": session_id, "main": 1, "total": int(questions),
                "deadline": first.deadline.timestamp() if first.deadline else None}
        banner_text = t("interview.review_banner", n=int(questions)) if review else ""
        return (view, banner_text, question_markdown(coach, first, view), countdown_markdown(view),
                gr.Timer(active=bool(first.time_limit)), "", "", gr.Column(visible=False), "", None,
                gr.DownloadButton(visible=False))

    def reply(text: str, view: dict):
        if not view.get("session") or view.get("done"):
            gr.Warning(t("interview.not_started"), title=t("warning_title"))
            return gr.skip()
        try:
            result = coach.answer_interview(view["session"], text)
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        if result.finished:
            return finished(view, turn_markdown(result))
        nxt = result.next
        view = {**view, "main": view["main"] + (not nxt.is_follow_up),
                "deadline": nxt.deadline.timestamp() if nxt.deadline else None}
        return (view, gr.skip(), question_markdown(coach, nxt, view), countdown_markdown(view),
                gr.Timer(active=bool(nxt.time_limit)), "", turn_markdown(result), *[gr.skip()] * 4)

    def end(view: dict):
        if not view.get("session") or view.get("done"):
            return gr.skip()
        try:
            coach.stop_interview(view["session"])
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        return finished(view, gr.skip())

    def tick(view: dict):
        text = countdown_markdown(view)
        return text, gr.Timer(active=text != t("interview.countdown_over") and bool(view.get("deadline")))

    private = dict(api_visibility="private")
    start.click(begin, [topics, level, count, limit], outputs, **private)
    gr.on([submit.click, answer.submit], reply, [answer, state], outputs, **private)
    skip.click(lambda view: reply("", view), state, outputs, **private)
    stop.click(end, state, outputs, **private)
    timer.tick(tick, state, [countdown, timer], show_progress="hidden", concurrency_limit=None, **private)
    return {"outputs": outputs, "begin": begin, "topics": topics}

