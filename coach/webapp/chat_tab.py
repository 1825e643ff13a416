"""问答: the chat tab."""

from __future__ import annotations


import gradio as gr

from ..errors import CoachError
from ..service import Coach
from ..strings import t
from .common import warn
from .render import chat_history, chat_messages


CHAT_TURNS_KEPT = 50  # per browser tab



def example_questions(coach: Coach, n: int = 4) -> list[str]:
    """The first question of each of the first topics, so the examples always exist in the bank."""
    firsts = {}
    for item in coach.kb.bank.items.values():
        firsts.setdefault(item.topic, item.question)
    return list(firsts.values())[:n]



def chat_tab(coach: Coach) -> None:
    gr.Markdown(t("chat.intro"))
    state = gr.State({"messages": [], "previous": None})
    bot = gr.Chatbot(show_label=False, height=540, placeholder=t("chat.placeholder"), buttons=["copy"],
                     feedback_options=None, elem_id="chat-bot")
    with gr.Row():
        box = gr.Textbox(show_label=False, placeholder=t("chat.input_placeholder"), scale=8, max_lines=4,
                         elem_id="chat-input")
        send = gr.Button(t("chat.send"), variant="primary", scale=1, min_width=80, elem_id="chat-send")
        clear = gr.Button(t("chat.clear"), scale=1, min_width=80, elem_id="chat-clear")
    gr.Examples([[q] for q in example_questions(coach)], inputs=[box], label=t("chat.examples"))

    def respond(message: str, chat: dict):
        """Stream one answer; the conversation so far is this browser tab's own state."""
        before = list(chat["messages"])
        question = (message or "").strip()
        answer = None
        try:
            for answer in coach.chat.stream(message, chat["previous"], chat_history(before)):
                yield "", before + chat_messages(question, answer, final=False), gr.skip()
        except CoachError as exc:
            warn(exc)
            yield gr.skip(), (before + chat_messages(question, answer, final=True)) if answer else gr.skip(), gr.skip()
            return
        after = (before + chat_messages(question, answer, final=True))[-3 * CHAT_TURNS_KEPT:]
        yield "", after, {"messages": after, "previous": answer.query}

    gr.on([box.submit, send.click], respond, [box, state], [box, bot, state], api_visibility="private",
          show_progress="minimal")
    clear.click(lambda: ([], {"messages": [], "previous": None}, ""), None, [bot, state, box],
                api_visibility="private", queue=False)

