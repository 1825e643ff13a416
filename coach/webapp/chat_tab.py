"""问答: the chat tab."""

from __future__ import annotations


import gradio as gr

from ..errors import CoachError
from ..service import Coach
from ..strings import t, use_language
from .common import PageText, english, is_english, space_of, warn
from .render import ASK_LINK, chat_history, chat_messages, offline_note_shown


CHAT_TURNS_KEPT = 50  # per browser tab

# The chat's behaviour in the page (run once by the hidden #chat-actions element):
# - a new question is scrolled to the top of the view and kept there while its answer streams
#   (until the user scrolls or clicks), so the answer is read from its start, not its end;
# - "[n]" in an answer is a button: it opens that answer's 出处 block and shows source n;
# - a related question's link asks that question.
CHAT_JS = """
const S = window.__coachChat = window.__coachChat || {};
S.trigger = trigger;
if (!S.installed) {
  S.installed = true;
  const ASK = '%(ask)s', CITE = /\\[(\\d{1,3})\\]/g;
  const bot = () => document.getElementById('chat-bot');
  const scrolls = e => /(auto|scroll)/.test(getComputedStyle(e).overflowY);

  function markCitations(box) {
    box.querySelectorAll('[data-testid="bot"] .message-content').forEach(content => {
      const row = content.closest('.message-row');  // only an answer with its sources block has citations
      if (content.closest('.thought-group') || !row || !row.querySelector('.thought-group')) return;
      const walker = document.createTreeWalker(content, NodeFilter.SHOW_TEXT), found = [];
      while (walker.nextNode()) {
        const node = walker.currentNode;
        CITE.lastIndex = 0;
        if (CITE.test(node.data) && !node.parentElement.closest('a, code, pre, button, .thought-group')) found.push(node);
      }
      found.forEach(node => {
        const parts = document.createDocumentFragment();
        let at = 0;
        node.data.replace(CITE, (all, n, start) => {
          parts.append(node.data.slice(at, start));
          const b = document.createElement('button');
          b.type = 'button'; b.className = 'chat-cite'; b.dataset.cite = n; b.textContent = all;
          parts.append(b);
          at = start + all.length;
        });
        parts.append(node.data.slice(at));
        node.replaceWith(parts);
      });
    });
  }

  function reveal(row) {  // the question at the top of the chat box, or of the page when it has no box
    const box = bot(), margin = 8;
    const boxes = [box, ...box.querySelectorAll('*')].filter(scrolls);
    if (boxes.length) {  // a box that scrolls (it may not overflow yet)
      const inner = boxes.find(e => e.scrollHeight > e.clientHeight + 1);
      if (!inner) return;
      const by = row.getBoundingClientRect().top - inner.getBoundingClientRect().top - margin;
      if (by > 1) inner.scrollTop += by;
    } else {
      const by = row.getBoundingClientRect().top - margin;
      if (by > 1) window.scrollBy(0, by);
    }
  }

  function update() {
    const box = bot();
    if (!box) return;
    markCitations(box);
    const rows = box.querySelectorAll('.message-row.user-row');
    const last = rows[rows.length - 1];
    if (last && !last.dataset.seen) { last.dataset.seen = '1'; S.pinned = last; }
    if (S.pinned && S.pinned.isConnected) reveal(S.pinned);
  }

  let queued = false;
  new MutationObserver(records => {
    const box = bot();
    if (queued || !box || !records.some(r => box.contains(r.target))) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; update(); });
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
  ['wheel', 'touchstart', 'pointerdown', 'keydown'].forEach(type =>
    document.addEventListener(type, () => { S.pinned = null; }, {capture: true, passive: true}));

  function showSource(cite) {
    const row = cite.closest('.message-row'), group = row && row.querySelector('.thought-group');
    if (!group) return;
    const n = cite.dataset.cite;
    const find = () => [...group.querySelectorAll('strong')].find(s => s.textContent.startsWith('[' + n + ']'));
    if (!find()) group.querySelector('.title').click();
    let tries = 0;
    (function look() {
      const head = find();
      if (!head) { if (++tries < 40) setTimeout(look, 25); return; }
      group.querySelectorAll('.chat-source-shown').forEach(e => e.classList.remove('chat-source-shown'));
      const line = head.closest('p') || head;
      line.classList.add('chat-source-shown');
      let quote = line.nextElementSibling;
      if (quote && quote.tagName === 'BLOCKQUOTE') quote.classList.add('chat-source-shown'); else quote = line;
      const show = () => { quote.scrollIntoView({block: 'nearest'}); line.scrollIntoView({block: 'nearest'}); };
      [0, 150, 400, 800].forEach(ms => setTimeout(show, ms));  // the block opens over a few frames
    })();
  }

  document.addEventListener('click', event => {
    const cite = event.target.closest('#chat-bot button.chat-cite');
    if (cite) { event.preventDefault(); event.stopPropagation(); showSource(cite); return; }
    const link = event.target.closest('#chat-bot a');
    if (link && (link.getAttribute('href') || '').endsWith(ASK)) {
      event.preventDefault(); event.stopPropagation();
      S.trigger('click', {question: link.textContent.trim()});
    }
  }, true);
}
""" % {"ask": ASK_LINK}



def example_questions(coach: Coach, n: int = 4) -> list[str]:
    """The first question of each of the first topics, so the examples always exist in the bank
    (in English on the English page)."""
    firsts = {}
    for item in coach.kb.bank.items.values():
        firsts.setdefault(item.topic, (item.question_en or item.question) if english() else item.question)
    return list(firsts.values())[:n]



def chat_tab(coach: Coach, lang: gr.Radio, texts: PageText) -> None:
    texts.add(gr.Markdown(t("chat.intro"), elem_id="chat-intro"), value="chat.intro")
    state = gr.State({"messages": [], "previous": None})
    bot = gr.Chatbot(show_label=False, height=540, placeholder=t("chat.placeholder"), buttons=["copy"],
                     feedback_options=None, autoscroll=False, elem_id="chat-bot")
    with gr.Row(elem_id="chat-compose"):
        box = gr.Textbox(show_label=False, placeholder=t("chat.input_placeholder"), scale=8, max_lines=4,
                         elem_id="chat-input")
        send = gr.Button(t("chat.send"), variant="primary", scale=1, min_width=80, elem_id="chat-send")
        clear = gr.Button(t("chat.clear"), scale=1, min_width=80, elem_id="chat-clear")
    examples = gr.Examples([[q] for q in example_questions(coach)], inputs=[box], label=t("chat.examples"))
    actions = gr.HTML("", js_on_load=CHAT_JS, elem_id="chat-actions")
    texts.add(bot, placeholder="chat.placeholder")
    texts.add(box, placeholder="chat.input_placeholder")
    texts.add(send, value="chat.send")
    texts.add(clear, value="chat.clear")
    texts.add(examples.dataset, label="chat.examples", samples=lambda: [[q] for q in example_questions(coach)])

    def respond(request: gr.Request, message: str, chat: dict, page_lang: str, event: gr.EventData):
        """Stream one answer; the conversation so far is this browser tab's own state. A click on a
        related question asks that question (and leaves whatever is typed in the box alone).
        A question in English (or the English page) gets the bank's English question and a line
        saying that the reference answer is in Chinese."""
        related = event.target is actions
        if related:
            message = _clicked_question(event)
        before = list(chat["messages"])
        question = (message or "").strip()
        note = not offline_note_shown(before)  # said once per conversation
        in_english = page_lang == "en" or is_english(question)

        def turn(answer, final: bool) -> list[dict]:
            with use_language(page_lang):
                return before + chat_messages(question, answer, final=final, note=note, english=in_english,
                                              bank=coach.kb.bank.items)

        # the box is emptied with the first piece only, so the next question can be typed meanwhile
        answer, box_value = None, gr.skip() if related else ""
        try:
            space = space_of(coach, request)
            for answer in space.chat.stream(message, chat["previous"], chat_history(before)):
                yield box_value, turn(answer, False), gr.skip()
                box_value = gr.skip()
        except CoachError as exc:
            with use_language(page_lang):
                warn(exc)
            yield gr.skip(), turn(answer, True) if answer else gr.skip(), gr.skip()
            return
        after = turn(answer, True)[-3 * CHAT_TURNS_KEPT:]
        yield box_value, after, {"messages": after, "previous": answer.query}

    # one listener: a question sent while an answer streams is asked when that answer is complete
    gr.on([box.submit, send.click, actions.click], respond, [box, state, lang], [box, bot, state],
          api_visibility="private", show_progress="minimal", trigger_mode="always_last")
    clear.click(lambda: ([], {"messages": [], "previous": None}, ""), None, [bot, state, box],
                api_visibility="private", queue=False)



def _clicked_question(event: gr.EventData) -> str:
    try:
        return str(event.question or "")
    except (AttributeError, TypeError):
        return ""
