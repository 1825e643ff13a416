"""模拟面试: the mock-interview tab."""

from __future__ import annotations


import gradio as gr

from ..errors import CoachError
from ..interview import MAX_QUESTIONS
from ..service import Coach
from ..strings import t, use_language
from .common import PageText, space_of, topic_choices, warn
from .render import countdown_markdown, escape_html, interview_config, question_markdown, turn_markdown


SCROLL_TO_QUESTION = """() => { const q = document.querySelector('#iv-question');
  if (q) q.scrollIntoView({block: 'start', behavior: 'instant'}); }"""


def question_frame(report):
    """Each answer's score in order ("第1题", "追问", "第2题" …): what the session looked like."""
    import pandas as pd

    labels, n = [], 0
    for turn in report.turns:
        n += not turn.is_follow_up
        labels.append(t("interview.chart_follow_up", n=n) if turn.is_follow_up else t("interview.chart_question", n=n))
    return pd.DataFrame({"question": labels, "score": [turn.score for turn in report.turns]})


def interview_tab(coach: Coach, lang: gr.Radio, texts: PageText) -> dict:
    """The interview form and its handlers; returns what the progress tab needs to start a review."""
    def abandon(view: dict) -> None:
        """The browser tab went away mid-interview: record the session as stopped early."""
        if view and view.get("session") and not view.get("done"):
            try:  # no request here: the (server-side) state remembers whose interview it is
                coach.space(view.get("user")).stop_interview(view["session"])
            except CoachError:
                pass

    texts.add(gr.Markdown(t("interview.intro"), elem_id="iv-intro"), value="interview.intro")
    state = gr.State({"session": None}, delete_callback=abandon)
    timer = gr.Timer(1.0, active=False)
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            topics = gr.Dropdown(topic_choices(coach), value=[],
                                 multiselect=True, label=t("interview.topics"), elem_id="iv-topics")
            level = gr.Radio([tuple(c) for c in t("interview.difficulty_choices")], value="adaptive",
                             label=t("interview.difficulty"), elem_id="iv-level")
            count = gr.Slider(1, MAX_QUESTIONS, value=3, step=1, label=t("interview.questions"), elem_id="iv-count")
            limit = gr.Dropdown([tuple(c) for c in t("interview.timer_choices")], value=0,
                                label=t("interview.timer"), elem_id="iv-limit")
            start = gr.Button(t("interview.start"), variant="primary", elem_id="iv-start")
            stop = gr.Button(t("interview.stop"), variant="stop", size="sm", elem_id="iv-stop")
        with gr.Column(scale=2):
            banner = gr.Markdown(elem_id="iv-banner")
            # the previous answer's grade sits above the next question, folded, so the question (and its
            # clock) is what the candidate sees first; one click unfolds the feedback
            with gr.Accordion(t("interview.last_feedback"), open=False, visible=False, elem_id="iv-feedback") as fold:
                graded = gr.Markdown(elem_id="iv-grade")
            question = gr.Markdown(t("interview.not_started"), elem_id="iv-question")
            countdown = gr.Markdown(elem_id="iv-countdown")
            answer = gr.Textbox(label=t("interview.answer"), placeholder=t("interview.answer_placeholder"), lines=6,
                                interactive=False, elem_id="iv-answer")
            with gr.Row():
                submit = gr.Button(t("interview.submit"), variant="primary", interactive=False, elem_id="iv-submit")
                skip = gr.Button(t("interview.skip"), interactive=False, elem_id="iv-skip")
    with gr.Column(visible=False, elem_id="iv-report-box") as report_box:
        with gr.Row():
            report = gr.Markdown(elem_id="iv-report")
            with gr.Column():
                plot = gr.BarPlot(x="question", y="score", x_title=t("interview.chart_x"),
                                  y_title=t("interview.chart_score"), y_lim=[0, 10], sort=None,
                                  label=t("interview.chart"), height=280, elem_id="iv-chart")
                download = gr.DownloadButton(t("interview.download"), visible=False, elem_id="iv-download")
                download_pdf = gr.DownloadButton(t("interview.download_pdf"), visible=False, elem_id="iv-download-pdf")
    texts.add(topics, label="interview.topics")
    texts.add(level, label="interview.difficulty", choices=lambda: [tuple(c) for c in t("interview.difficulty_choices")])
    texts.add(count, label="interview.questions")
    texts.add(limit, label="interview.timer", choices=lambda: [tuple(c) for c in t("interview.timer_choices")])
    for button, key in ((start, "start"), (stop, "stop"), (submit, "submit"), (skip, "skip")):
        texts.add(button, value=f"interview.{key}")
    texts.add(answer, label="interview.answer", placeholder="interview.answer_placeholder")
    texts.default(question, "interview.not_started")
    texts.add(plot, label="interview.chart", x_title="interview.chart_x", y_title="interview.chart_score")
    texts.add(download, label="interview.download")
    texts.add(download_pdf, label="interview.download_pdf")
    outputs = [state, banner, question, countdown, timer, answer, fold, graded, report_box, report, plot, download,
               download_pdf, submit, skip, topics, level, count, limit]

    def answering(on: bool):
        """The answer box and its buttons: usable only while a question is open."""
        return gr.Button(interactive=on), gr.Button(interactive=on)

    def finished(space, view: dict, last: str | None, label: str = ""):
        """The report; ``last``: the final answer's feedback (None when the candidate stopped early)."""
        result = space.interview_report(view["session"])
        markdown_path, pdf_path = space.save_report(result)
        feedback = gr.Accordion(label=label or t("interview.last_feedback"), open=False, visible=True) if last else gr.skip()
        return ({**view, "deadline": None, "done": True}, "", t("interview.finished"), "", gr.Timer(active=False),
                gr.Textbox(value="", interactive=False, placeholder=t("interview.ended_placeholder")),
                feedback, last if last else gr.skip(), gr.Column(visible=True),
                escape_html(result.to_markdown()), question_frame(result),
                gr.DownloadButton(value=str(markdown_path), visible=True),
                gr.DownloadButton(value=str(pdf_path), visible=True), *answering(False), *[gr.skip()] * 4)

    def begin(request: gr.Request, topic_ids, difficulty, questions, seconds, page_lang: str = "zh",
              review: bool = False):
        with use_language(page_lang):
            return _begin(request, topic_ids, difficulty, questions, seconds, review)

    def _begin(request, topic_ids, difficulty, questions, seconds, review: bool):
        try:
            space = space_of(coach, request)
            config = interview_config(topic_ids, difficulty, questions, seconds, review)
            session_id, first = space.start_interview(config)
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        view = {"session": session_id, "user": space.user, "main": 1, "total": int(config.questions),
                "deadline": first.deadline.timestamp() if first.deadline else None}
        banner_text = t("interview.review_banner", n=int(config.questions)) if review else ""
        # the settings show what this session runs with (a review from 进度 sets its own)
        settings = (list(config.topics), str(config.difficulty), int(config.questions), int(config.time_limit or 0))
        return (view, banner_text, question_markdown(space, first, view), countdown_markdown(view),
                gr.Timer(active=bool(first.time_limit)),
                gr.Textbox(value="", interactive=True, placeholder=t("interview.answer_placeholder")),
                gr.Accordion(visible=False), "", gr.Column(visible=False), "", None, gr.DownloadButton(visible=False),
                gr.DownloadButton(visible=False), *answering(True), *settings)

    def reply(request: gr.Request, text: str, view: dict, page_lang: str = "zh"):
        with use_language(page_lang):
            return _reply(request, text, view)

    def _reply(request, text: str, view: dict):
        if not view.get("session"):
            gr.Warning(t("interview.not_started"), title=t("warning_title"))
            return gr.skip()
        if view.get("done"):
            gr.Warning(t("interview.already_ended"), title=t("warning_title"))
            return gr.skip()
        try:
            space = space_of(coach, request)
            result = space.answer_interview(view["session"], text)
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        last = turn_markdown(result, space)
        score = t("interview.no_score") if result.grade.score is None else f"{result.score:.1f}/10"
        label = t("interview.last_feedback_scored", score=score, verdict=result.grade.verdict)
        if result.finished:
            return finished(space, view, last, label)
        nxt = result.next
        view = {**view, "main": view["main"] + (not nxt.is_follow_up),
                "deadline": nxt.deadline.timestamp() if nxt.deadline else None}
        fold_now = gr.Accordion(label=label, open=False, visible=True)
        return (view, gr.skip(), question_markdown(space, nxt, view), countdown_markdown(view),
                gr.Timer(active=bool(nxt.time_limit)), "", fold_now, last, *[gr.skip()] * 5, *answering(True),
                *[gr.skip()] * 4)

    def end(request: gr.Request, view: dict, page_lang: str = "zh"):
        if not view.get("session") or view.get("done"):
            return gr.skip()
        with use_language(page_lang):
            return _end(request, view)

    def _end(request, view: dict):
        try:
            space = space_of(coach, request)
            space.stop_interview(view["session"])
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        return finished(space, view, None)

    def tick(view: dict, page_lang: str = "zh"):
        with use_language(page_lang):
            text = countdown_markdown(view)
            return text, gr.Timer(active=text != t("interview.countdown_over") and bool(view.get("deadline")))

    private = dict(api_visibility="private")
    start.click(begin, [topics, level, count, limit, lang], outputs, **private).then(None, js=SCROLL_TO_QUESTION)
    gr.on([submit.click, answer.submit], reply, [answer, state, lang], outputs, **private).then(None, js=SCROLL_TO_QUESTION)
    def skipped(request: gr.Request, view: dict, page_lang: str = "zh"):
        return reply(request, "", view, page_lang)

    skip.click(skipped, [state, lang], outputs, **private).then(
        None, js=SCROLL_TO_QUESTION)
    stop.click(end, [state, lang], outputs, **private)
    timer.tick(tick, [state, lang], [countdown, timer], show_progress="hidden", concurrency_limit=None, **private)
    return {"outputs": outputs, "begin": begin, "topics": topics}
