"""The named API endpoints (gradio_client: ``Client(url).predict(..., api_name="/ask")``)."""

from __future__ import annotations

from contextlib import contextmanager

import gradio as gr

from ..errors import CoachError
from ..service import Coach, client_of
from .common import api_error, space_of
from .render import answer_json, interview_config, question_json, turn_json


def register_api(coach: Coach) -> None:
    """/ask, /grade, /interview_start, /interview_answer and /interview_report; documented in docs/webapp.md.

    Every field is checked for type and length before any work (``coach.limits``); a user's
    mistake comes back as one sentence, and a bug as one generic sentence with its traceback
    in the server's log only."""
    from ..limits import check_answer, check_history, check_id, check_previous, check_query

    def ask(question: str, previous: str = "", history: list | None = None, request: gr.Request = None) -> tuple[str, dict]:
        """Answer a question from the knowledge base. `previous`: the previous question, for follow-ups like "那LN呢?";
        `history`: the conversation so far as [{"role": "user"|"assistant", "content": ...}] (used by a configured
        model; the last 6 are kept). Returns the answer as Markdown and {"query", "grounded", "model", "sources": [...]}."""
        with api_errors():
            answer = space_of(coach, request).chat.answer(check_query(question), check_previous(previous) or None, check_history(history))
            return answer.text, answer_json(answer)

    def grade(question: str = "", answer: str = "", question_id: str = "", request: gr.Request = None) -> dict:
        """Grade `answer` against a bank item (`question_id`) or a free-text `question`. Returns the grade as JSON."""
        with api_errors():
            item_id = check_id(question_id, "The question id") or None
            text = check_query(question) if (question and not item_id) else None
            return space_of(coach, request).grader.grade(check_answer(answer), item_id=item_id, question=text).to_json()

    def interview_start(topics: list[str] | None = None, difficulty: str = "adaptive", questions: int = 5,
                        time_limit: float = 0, review_only: bool = False, request: gr.Request = None) -> tuple[str, dict]:
        """Start a mock interview. Returns a session token (keep it secret) and the first question."""
        with api_errors():
            space = space_of(coach, request)
            session_id, question = space.start_interview(
                interview_config(topics, difficulty, questions, time_limit, review_only is True))
            token = space.interviews.add(session_id, client_of(request))
            return token, question_json(question, space.topic_name(question.topic))

    def interview_answer(token: str, answer: str, request: gr.Request = None) -> tuple[dict, dict | None]:
        """Answer the current question. Returns the graded turn and the next question (null when finished)."""
        with api_errors():
            space = space_of(coach, request)  # a token is found only in the history of the user who started it
            result = space.answer_interview(space.interviews.get(token), check_answer(answer))
            nxt = result.next
            return turn_json(result), question_json(nxt, space.topic_name(nxt.topic) if nxt else "")

    def interview_report(token: str, request: gr.Request = None) -> tuple[str, dict]:
        """The session's report as Markdown and as JSON (works before the end too)."""
        with api_errors():
            space = space_of(coach, request)
            report = space.interview_report(space.interviews.get(token))
            return report.to_markdown(), report.to_json()

    for fn in (ask, grade, interview_start, interview_answer, interview_report):
        gr.api(fn, api_name=fn.__name__)



@contextmanager
def api_errors():
    """A ``CoachError`` becomes its sentence for the client; anything else is logged with its
    traceback and the client gets one generic sentence."""
    try:
        yield
    except CoachError as exc:
        raise api_error(exc) from None
    except gr.Error:
        raise
    except Exception:
        import traceback

        traceback.print_exc()
        raise gr.Error("Something went wrong on the server while handling this request; try again, "
                       "and report it if it keeps happening.", print_exception=False) from None

