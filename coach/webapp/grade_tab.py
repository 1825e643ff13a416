"""答案评分: the grading tab."""

from __future__ import annotations


import gradio as gr

from ..errors import CoachError
from ..service import Coach
from ..strings import difficulty_name, t, use_language
from .common import PageText, bank_question, space_of, topic_name, warn
from .render import grade_details_markdown, highlighted_answer, score_markdown


def bank_choices(coach: Coach) -> list[tuple[str, str]]:
    """Every question that can be graded: the bank's, then those of the user's documents (a bank
    question in the page's language)."""
    catalog = coach.kb.catalog
    order = {topic: n for n, topic in enumerate(catalog.topics)}
    items = sorted(catalog.items.values(), key=lambda i: (order.get(i.topic, 999), i.difficulty, i.id))
    return [(t("grade.choice", topic=topic_name(coach, i.topic), difficulty=difficulty_name(i.difficulty),
               question=bank_question(i)), i.id) for i in items]



def grade_tab(coach: Coach, lang: gr.Radio, texts: PageText) -> gr.Dropdown:
    """The tab; returns its question picker, whose choices the page refreshes per person (their documents)."""
    texts.add(gr.Markdown(t("grade.intro"), elem_id="grade-intro"), value="grade.intro")
    with gr.Row():
        with gr.Column(scale=1):
            pick = gr.Dropdown(bank_choices(coach), value=None, label=t("grade.pick"), filterable=True,
                               elem_id="grade-pick")
            custom = gr.Textbox(label=t("grade.custom"), placeholder=t("grade.custom_placeholder"), max_lines=3,
                                elem_id="grade-custom")
            answer = gr.Textbox(label=t("grade.answer"), placeholder=t("grade.answer_placeholder"), lines=9,
                                elem_id="grade-answer")
            submit = gr.Button(t("grade.submit"), variant="primary", elem_id="grade-submit")
        with gr.Column(scale=1):
            score = gr.Markdown(elem_id="grade-score")
            marked = gr.HighlightedText(label=t("grade.highlight"), show_legend=True, elem_id="grade-highlight",
                                        color_map={t("grade.covered_label"): "green",
                                                   t("grade.misconception_label"): "red"})
    details = gr.Markdown(elem_id="grade-details")
    texts.add(pick, label="grade.pick", choices=lambda: bank_choices(coach))
    texts.add(custom, label="grade.custom", placeholder="grade.custom_placeholder")
    texts.add(answer, label="grade.answer", placeholder="grade.answer_placeholder")
    texts.add(submit, value="grade.submit")
    texts.add(marked, label="grade.highlight", color_map=lambda: {t("grade.covered_label"): "green",
                                                                 t("grade.misconception_label"): "red"})

    def run(request: gr.Request, item_id: str | None, question: str, text: str, page_lang: str = "zh"):
        with use_language(page_lang):
            return _run(request, item_id, question, text)

    def _run(request, item_id: str | None, question: str, text: str):
        if not (question or "").strip() and not item_id:
            gr.Warning(t("grade.need_question"), title=t("warning_title"))
            return gr.skip()
        try:
            space = space_of(coach, request)
            if (question or "").strip():
                result = space.grader.grade(text, question=question)
            else:
                result = space.grader.grade(text, item_id=item_id)
            space.record_practice(result, text or "")  # 进度 counts it, and the question's review is rescheduled
        except CoachError as exc:
            warn(exc)
            return gr.skip()
        return (score_markdown(result, coach.kb.bank.items), highlighted_answer(text or "", result),
                grade_details_markdown(result))

    submit.click(run, [pick, custom, answer, lang], [score, marked, details], api_visibility="private")
    return pick

