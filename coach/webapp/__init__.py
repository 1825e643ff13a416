"""The browser app: chat, mock interview, grading, knowledge base and progress in one Gradio page.

``coach serve`` calls :func:`serve`. The page is one shell over the application
service (``coach/service.py``: ``Coach``); every string it shows lives in
``resources/webapp.yaml`` (``coach/strings.py``). One module per tab:

- ``chat_tab.py`` 问答, ``interview_tab.py`` 模拟面试, ``grade_tab.py`` 答案评分,
  ``knowledge_tab.py`` 知识库, ``progress_tab.py`` 进度;
- ``render.py``: engine results as Markdown and JSON (pure functions);
- ``api.py``: the named API (``/ask``, ``/grade``, ``/interview_*``);
- ``security.py``: login parsing and the failed-login throttle;
- ``common.py``: showing a user's error as a toast or an API error.

Design:

- One :class:`Coach` per process holds what is expensive and shared: the
  knowledge base (models loaded once at start-up, progress printed to the
  terminal), the grader and the chat engine. Writes to the index (upload,
  remove, rebuild) take one lock; searches keep using the previous index
  generation while a write runs.
- Everything that belongs to one browser tab (chat turns, the interview in
  progress, its clock) lives in ``gr.State``, so two people never see each
  other's conversation. API clients have no browser state: their interviews
  are kept server-side under an unguessable token.
- A ``CoachError`` is the user's to fix: every handler catches it and shows
  its one sentence (in Chinese, see ``messages`` in the strings file) as a
  warning or, for API clients, as the error message. Anything else is a bug
  and Gradio shows a generic error without a traceback.
- Language: Chinese by default; the header's 中文 / English switch (or ``?lang=en``) puts one browser
  tab in English (``resources/webapp.en.yaml``): every handler runs in its tab's language, and the
  labels built with the page are re-rendered on a switch (``common.PageText``).
- Safe defaults: bound to 127.0.0.1, no share link, optional password, an
  upload size limit, input length limits, a bounded queue, and Markdown
  with HTML escaped (document and model text are untrusted).
"""

from __future__ import annotations

import os

import gradio as gr

from ..config import Settings
from ..errors import CoachError
from ..limits import MAX_UPLOAD_MB
from ..service import Coach
from ..strings import language_of, t, use_language
from .api import register_api
from .chat_tab import chat_tab
from .common import PageText, space_of, topic_choices
from .grade_tab import bank_choices, grade_tab
from .interview_tab import interview_tab
from .knowledge_tab import knowledge_tab, upload_css
from .progress_tab import progress_tab
from .security import LoginThrottle, parse_auth

# what other modules and the tests use from the web app
from ..service import API_SESSIONS_PER_CLIENT, INTERVIEW_IDLE, ApiInterviews
from ..strings import message_for
from .render import (chat_messages, countdown_markdown, escape_html, highlighted_answer,
                     report_markdown)

__all__ = ["API_SESSIONS_PER_CLIENT", "INTERVIEW_IDLE", "ApiInterviews", "Coach", "build_app", "chat_messages",
           "countdown_markdown", "escape_html", "highlighted_answer", "message_for", "parse_auth", "report_markdown",
           "serve"]

QUEUE_CONCURRENCY, QUEUE_MAX = 4, 64



CSS = """
#iv-countdown p { font-size: 1.25rem; margin: 0; }
#grade-score h2, #iv-grade h2 { margin-bottom: 0.2rem; }
.coach-header h1 { margin-bottom: 0.1rem; }
#coach-top { align-items: flex-start; flex-wrap: nowrap; }
#coach-lang { flex: 0 0 auto !important; min-width: 0 !important; width: auto; padding: 0; background: none; border: none; }
#coach-lang .wrap { flex-wrap: nowrap; gap: 4px; }
#coach-lang label { padding: 2px 8px; font-size: var(--text-sm); }
footer { opacity: 0.6; }
/* ---- header and tab bar ---- */
@media (max-width: 640px) {  /* phone: a one-line title, and all five tabs in the bar (they wrap, never "•••") */
  .coach-header { padding-top: 0 !important; padding-bottom: 0 !important; }
  .coach-header h1 { font-size: 1.05rem; line-height: 1.3; margin: 0; }
  /* the counts line goes (the knowledge tab lists the same); only its sign-out link stays */
  .coach-header p { font-size: 0; line-height: 0; margin: 0; }
  .coach-header p a[href$="/logout"] { font-size: 0.75rem; line-height: 1.4; }
  #coach-top { flex-wrap: nowrap; align-items: center; gap: 6px; }
  #coach-lang label { padding: 2px 5px; }
  #coach-tabs > .tab-wrapper [role=tablist] { flex-wrap: wrap; row-gap: 2px; }
  #coach-tabs > .tab-wrapper [role=tablist] button { font-size: 0.8rem; padding: 0.3rem 0.4rem; }
}
/* ---- end header and tab bar ---- */
/* ---- chat tab (问答) ---- */
#chat-actions { display: none !important; }
#chat-bot button.chat-cite { all: unset; cursor: pointer; color: var(--link-text-color); font-weight: 600; }
#chat-bot button.chat-cite:hover, #chat-bot button.chat-cite:focus-visible { text-decoration: underline; }
#chat-bot .chat-source-shown { background: var(--color-accent-soft); border-radius: 4px; scroll-margin: 8px; }
.gradio-container { overflow: clip !important; }  /* as hidden, but lets the phone's input row stick */
@media (max-width: 640px) {  /* phone: no box scrolling inside the page; the input stays in view */
  #chat-bot { height: auto !important; max-height: none !important; min-height: 160px; overflow: visible !important; }
  #chat-bot .bubble-wrap { height: auto !important; max-height: none !important; overflow: visible !important; }
  #chat-compose { position: sticky; bottom: 0; z-index: 10; background: var(--background-fill-primary);
                  padding: 6px 0; flex-wrap: nowrap; gap: 6px; }
  #chat-compose > .form { min-width: 0 !important; flex: 1 1 auto; }
  #chat-bot .chat-source-shown { scroll-margin-bottom: 120px; }  /* clear of the input row */
  #chat-compose button { flex: 0 0 auto; min-width: 0 !important; padding-left: 10px; padding-right: 10px;
                         white-space: nowrap; }
}
/* ---- end chat tab ---- */
"""



def toast_css() -> str:
    """Gradio titles its toasts "Warning"/"Error" in the browser's language; show the strings file's
    titles instead, in the page's language (``body.coach-en``: the English page)."""
    rules = [f'.toast-title.{level} {{ font-size: 0 !important; }}\n'
             f'.toast-title.{level}::before {{ content: "{title}"; font-size: var(--text-md); }}'
             for level, title in t("toast_titles", lang="zh").items()]
    rules += [f'body.coach-en .toast-title.{level}::before {{ content: "{title}" !important; }}'
              for level, title in t("toast_titles", lang="en").items()]
    return "\n".join(rules)



def build_app(coach: Coach):
    """The whole page: five tabs over one ``Coach``; each browser tab keeps its own ``gr.State``."""
    texts = PageText()  # what the language switch re-renders
    with gr.Blocks(title=t("title"), analytics_enabled=False) as app:
        with gr.Row(elem_id="coach-top"):
            header = gr.Markdown(t("header", summary=coach.summary()), elem_classes="coach-header")
            # 中文 / English for this browser tab only (Chinese by default; ?lang=en opens the page in English)
            lang = gr.Radio([tuple(c) for c in t("language_choices")], value="zh", show_label=False,
                            container=False, scale=0, min_width=160, elem_id="coach-lang")
        texts.add(header, value=lambda: t("header", summary=coach.summary()))
        # phone width: tabs that do not fit wrap onto a second row instead of hiding behind "•••"
        with gr.Tabs(overflow_behavior="wrap", elem_id="coach-tabs") as tabs:
            with gr.Tab(t("tabs.chat"), id="chat", elem_id="tab-chat") as chat_page:
                chat_tab(coach, lang, texts)
            with gr.Tab(t("tabs.interview"), id="interview", elem_id="tab-interview") as interview_page:
                interview = interview_tab(coach, lang, texts)
            with gr.Tab(t("tabs.grade"), id="grade", elem_id="tab-grade") as grade_page:
                grade_pick = grade_tab(coach, lang, texts)
            with gr.Tab(t("tabs.kb"), id="kb", elem_id="tab-kb") as kb_page:
                knowledge_tab(coach, header, app, lang, texts)  # also refreshes the header on load
            with gr.Tab(t("tabs.progress"), id="progress", elem_id="tab-progress") as progress:
                progress_tab(coach, app, progress, tabs, interview, lang, texts)
        for name, page in (("chat", chat_page), ("interview", interview_page), ("grade", grade_page), ("kb", kb_page),
                           ("progress", progress)):
            texts.add(page, label=f"tabs.{name}")

        # documents uploaded since the page was built (this person's and the shared ones) add topics
        # ("我的资料 · notes.md") and questions to grade
        def choices_now(make):
            def handler(request: gr.Request, chosen):
                with use_language(chosen):
                    try:
                        space = space_of(coach, request)
                    except CoachError:
                        return gr.skip()
                    return gr.Dropdown(choices=make(space))
            return handler

        for page, make, picker in ((interview_page, topic_choices, interview["topics"]),
                                   (grade_page, bank_choices, grade_pick)):
            handler = choices_now(make)
            gr.on([page.select, app.load], handler, lang, picker, api_visibility="private", show_progress="hidden")
            texts.refresh(handler, [], [picker])
        texts.wire(lang)

        def asked_language(request: gr.Request):
            """``?lang=en`` in the address opens the page in English (without it the switch is left alone:
            a click on it made while the page loads stands)."""
            query = getattr(request, "query_params", None) or {}
            asked = str(query.get("lang") or "").strip().lower()[:5]
            return language_of(asked) if asked else gr.skip()

        app.load(asked_language, None, lang, api_visibility="private", show_progress="hidden")
        register_api(coach)
    return app



def serve(host: str = "127.0.0.1", port: int = 7860, auth: str | None = None, share: bool = False,
          settings: Settings | None = None, prevent_thread_lock: bool = False, quiet: bool = False, coach=None,
          accounts=None, trusted_header: str | None = None):
    """Load the models once, build the page and launch it; returns ``(app, local_url)``.

    Who is signed in: ``trusted_header`` (a reverse proxy's header names the user; no login page),
    else the users in ``accounts`` (a login page, each user their own space), else ``auth`` (one
    shared password, one space), else nobody (one person's app, no login)."""
    credentials = parse_auth(auth if auth is not None else os.environ.get("COACH_AUTH"))
    from starlette.middleware import Middleware

    coach = coach or Coach(settings, accounts=accounts, trusted_header=trusted_header)
    if coach.trusted_header:
        credentials = None
    elif coach.accounts is not None and len(coach.accounts):
        credentials = coach.accounts.verify  # Gradio calls it with the name and password typed
    _skip_matplotlib_probe()
    app = build_app(coach)
    app.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX)
    coach.reports_dir.mkdir(parents=True, exist_ok=True)
    _, url, _ = app.launch(
        server_name=host, server_port=port, auth=credentials, auth_message=t("title") if credentials else None,
        share=share, max_file_size=f"{MAX_UPLOAD_MB}mb", prevent_thread_lock=prevent_thread_lock, quiet=quiet,
        show_error=False, allowed_paths=[str(coach.reports_dir)], footer_links=["api"], ssr_mode=False,
        mcp_server=False, css=CSS + toast_css() + upload_css(), enable_monitoring=False, head=SIGN_OUT_JS,
        app_kwargs={"middleware": [Middleware(LoginThrottle)]})
    return app, url


# Gradio opens every Markdown link in a new tab; signing out (the header's link) belongs in this one
SIGN_OUT_JS = """<script>
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest('a[href$="/logout"]');
  if (link) { event.preventDefault(); window.location.assign(link.href); }
}, true);
</script>"""


def _skip_matplotlib_probe() -> None:
    """Gradio tries ``import matplotlib`` twice around every event; when it is not installed a
    failed import is not cached, so each request searched the whole of sys.path (a twentieth of
    the server's time under load). Record the absence once; an installed matplotlib is untouched."""
    import importlib.util
    import sys

    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None  # ``import matplotlib`` now raises ImportError at once
