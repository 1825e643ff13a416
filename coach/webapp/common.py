"""Showing a user's error in the page (toast) or to an API client (one sentence), and the page's language.

The language switch (中文 / English, in the header) is one ``gr.Radio`` per browser tab: every handler
takes its value as its last input and runs inside ``use_language(lang)``, so whatever it renders
(``t(...)``) is in that tab's language and no one else's. What the page shows before any handler
runs (labels, buttons, placeholders, intros) is registered in a :class:`PageText`, which re-renders
it all when the switch changes.
"""

from __future__ import annotations

import html
import re
from typing import Callable

import gradio as gr

from ..errors import CoachError
from ..strings import LANGUAGES, language, message_for, t, use_language


def warn(exc: CoachError) -> None:
    """Show a user's error as a toast; its text may name an uploaded file, so it is escaped."""
    gr.Warning(html.escape(message_for(exc)), title=t("warning_title"))



def api_error(exc: CoachError):
    return gr.Error(message_for(exc), title=t("error_title"), print_exception=False)



_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def is_english(text: str) -> bool:
    """A question written in English: Latin words and no Chinese characters ("What is BN?", not "BN是什么")."""
    text = text or ""
    return not _CJK.search(text) and len(_LATIN_WORD.findall(text)) >= 2



def english() -> bool:
    """Is the page in English (the current handler's language)?"""
    return language() == "en"



def bank_question(item) -> str:
    """A bank item's question in the page's language (the bank has every question in both)."""
    return (getattr(item, "question_en", "") or item.question) if english() else item.question



def space_of(coach, request):
    """Whose request this is: the signed-in user's space (their history, documents and reports), or
    the one space of an app without accounts. Every handler that reads or writes a person's state
    takes ``request: gr.Request`` as its first parameter and starts here."""
    headers = getattr(request, "headers", None) if request is not None else None
    return coach.space_for(getattr(request, "username", None) if request is not None else None, headers)



def topic_name(coach, topic: str) -> str:
    """A topic's name in the page's language."""
    found = coach.kb.catalog.topics.get(topic)
    if found is None:
        return topic
    return (getattr(found, "en", "") or found.zh) if english() else found.zh



def topic_choices(coach) -> list[tuple[str, str]]:
    return [(topic_name(coach, tp.id), tp.id) for tp in coach.kb.catalog.topics.values()]



class PageText:
    """What the language switch re-renders.

    ``add(component, label="chat.input", ...)``: props from string keys, or from functions of no
    arguments (run in the chosen language). ``default(markdown, key)``: a Markdown whose first text
    is ``key``; a handler replaces it later, so it is re-rendered only while it still shows that
    text. ``refresh(fn, inputs, outputs)``: a handler ``fn(*inputs, lang)`` run after the switch
    (tables, choices: what is read from the server)."""

    def __init__(self):
        self.entries: list[tuple[object, dict]] = []
        self.kept: list[tuple[object, str]] = []
        self.refreshers: list[tuple[Callable, list, list]] = []

    def add(self, component, **props):
        self.entries.append((component, props))
        return component

    def default(self, component, key: str):
        self.kept.append((component, key))
        return component

    def refresh(self, fn: Callable, inputs: list, outputs: list) -> None:
        self.refreshers.append((fn, inputs, outputs))

    def render(self, lang: str, current: tuple) -> list:
        with use_language(lang):
            updates = [gr.update(**{name: value() if callable(value) else t(value) for name, value in props.items()})
                       for _, props in self.entries]
            for (_, key), value in zip(self.kept, current):
                shown = {t(key, lang=code) for code in LANGUAGES}
                updates.append(t(key) if value in shown or not value else gr.skip())
        return updates

    def wire(self, switch: gr.Radio) -> None:
        """Re-render everything registered when ``switch`` changes (by the user, or on load from ``?lang=``)."""
        kept = [c for c, _ in self.kept]
        event = switch.change(lambda lang, *current: self.render(lang, current), [switch, *kept],
                              [c for c, _ in self.entries] + kept, api_visibility="private", show_progress="hidden",
                              js=LANGUAGE_JS)
        for fn, inputs, outputs in self.refreshers:
            event.then(fn, [*inputs, switch], outputs, api_visibility="private", show_progress="hidden")



# the page's own language: <html lang>, and a class for what CSS words (toast titles, the drop zone)
LANGUAGE_JS = """(lang, ...rest) => {
  document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
  document.body.classList.toggle('coach-en', lang === 'en');
  return [lang, ...rest];
}"""
