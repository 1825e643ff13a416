"""Showing a user's error in the page (toast) or to an API client (one sentence)."""

from __future__ import annotations

import html

import gradio as gr

from ..errors import CoachError
from ..strings import message_for, t


def warn(exc: CoachError) -> None:
    """Show a user's error as a toast; its text may name an uploaded file, so it is escaped."""
    gr.Warning(html.escape(message_for(exc)), title=t("warning_title"))



def api_error(exc: CoachError):
    return gr.Error(message_for(exc), title=t("error_title"), print_exception=False)

