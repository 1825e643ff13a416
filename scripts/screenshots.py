"""Screenshots of each tab with realistic content (real corpus, seeded history, uploaded notes).

Usage: .venv/bin/python scripts/screenshots.py docs/screenshots   (needs /usr/bin/chromium)
"""
import os, shutil, sys, time, tempfile
from datetime import timedelta
from pathlib import Path
CHECKOUT = Path(__file__).resolve().parent.parent
root = Path(tempfile.mkdtemp(prefix="coach-shots-"))
if (CHECKOUT / "index" / "CURRENT").exists():  # reuse a built index; else the app builds one
    shutil.copytree(CHECKOUT / "index", root / "index")
os.environ["COACH_HOME"] = str(root / "home"); os.environ["COACH_INDEX_DIR"] = str(root / "index")
sys.path.insert(0, str(CHECKOUT))
from coach.webapp import Coach, serve
from coach.history import History, utcnow
from coach.interview import InterviewConfig, InterviewSession
from coach.text import split_sentences

coach = Coach()
# ---- seed two weeks of practice: answers get better over time
plan = [(13, 0.2), (10, 0.4), (7, 0.55), (4, 0.7), (2, 0.85), (1, 0.95)]
for days, share in plan:
    now = utcnow() - timedelta(days=days, hours=3)
    with History.open(coach.settings) as h:
        s = InterviewSession.start(coach.kb, coach.grader, h, InterviewConfig(("normalization", "optimization", "cnn"), "adaptive", 3), now=now)
        for k in range(8):
            q = s.current
            if q is None: break
            item = coach.kb.bank.items[q.item_id]
            sents = split_sentences(item.answer)
            ans = "".join(sents[: max(1, round(len(sents) * share))]) if share > 0.3 or k % 2 else "不太清楚。"
            now += timedelta(minutes=3)
            s.answer(ans, now=now)
print("seeded")
docs = root / "docs"; docs.mkdir()
SEEDS = CHECKOUT.parent / "shared" / "seeds"  # the sample pages beside the checkout
shutil.copy(sorted(SEEDS.glob("000_*.txt"))[0], docs / "深度学习面试知识点.txt")
shutil.copy(sorted(SEEDS.glob("003_*.txt"))[0], docs / "面经整理-卷积与优化.txt")
coach.add_documents(sorted(docs.iterdir()))
app, url = serve(port=7880, coach=coach, prevent_thread_lock=True, quiet=True)

from playwright.sync_api import sync_playwright, expect
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
with sync_playwright() as p:
    b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"])
    pg = b.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    pg.goto(url); pg.wait_for_selector("#chat-input textarea")
    # 进度
    pg.get_by_role("tab", name="📈 进度").click(); time.sleep(2.5)
    pg.screenshot(path=str(out / "progress.png"))
    pg.get_by_role("tab", name="💬 问答").click(); time.sleep(0.5)
    # 问答
    box = pg.locator("#chat-input textarea")
    for q in ["BN层为什么要加γ和β?", "那LN呢?"]:
        box.fill(q); box.press("Enter"); time.sleep(0.5)
        expect(pg.locator("#chat-input textarea")).to_have_value("", timeout=20000)
        expect(pg.locator("#chat-bot .generating")).to_have_count(0, timeout=20000); time.sleep(0.5)
    pg.get_by_text("出处（").last.click(); time.sleep(0.5)
    pg.locator("#chat-bot").get_by_text("出处（").last.scroll_into_view_if_needed()
    pg.evaluate("""() => { const el=[...document.querySelectorAll('#chat-bot *')].find(e=>e.scrollHeight>e.clientHeight+20 && getComputedStyle(e).overflowY!='visible');
      const blocks=[...document.querySelectorAll('#chat-bot button, #chat-bot div')].filter(e=>e.innerText && e.innerText.startsWith('📎')); const last=blocks[blocks.length-1];
      if(el && last){ el.scrollTop = last.getBoundingClientRect().top - el.getBoundingClientRect().top + el.scrollTop - 250; } }""")
    time.sleep(0.5); pg.screenshot(path=str(out / "chat.png"))
    # 模拟面试
    pg.get_by_role("tab", name="🎤 模拟面试").click()
    pg.locator("#iv-topics input").click(); pg.keyboard.type("归一化"); pg.keyboard.press("Enter")
    pg.keyboard.type("卷积"); pg.keyboard.press("Enter"); pg.keyboard.press("Escape")
    pg.locator("#iv-limit input").click(); pg.get_by_role("option", name="3 分钟").click()
    pg.locator("#iv-start").click(); expect(pg.locator("#iv-question")).to_contain_text("第 1 / 3 题", timeout=20000)
    qtext = pg.locator("#iv-question").inner_text()
    item = next(i for i in coach.kb.bank.items.values() if i.question in qtext)
    pg.locator("#iv-answer textarea").fill(" ".join(item.answer.split())[:170])
    pg.locator("#iv-submit").click(); expect(pg.locator("#iv-feedback")).to_contain_text("/10", timeout=20000)
    time.sleep(2.5)
    pg.locator("#iv-answer textarea").fill("我觉得主要是因为")
    pg.screenshot(path=str(out / "interview.png"))
    # 答案评分
    pg.get_by_role("tab", name="📝 答案评分").click()
    pg.locator("#grade-pick input").click(); pg.keyboard.type("Dropout"); time.sleep(0.5)
    pg.get_by_role("option").first.click()
    pg.locator("#grade-answer textarea").fill("Dropout在训练时随机把一部分神经元的输出置零，相当于训练很多共享参数的子网络做集成，可以减轻过拟合。推理时也随机丢弃神经元。")
    pg.locator("#grade-submit").click(); expect(pg.locator("#grade-score")).to_contain_text("/ 10", timeout=20000); time.sleep(1)
    pg.screenshot(path=str(out / "grade.png"))
    # 知识库
    pg.get_by_role("tab", name="📚 知识库").click()
    pg.locator("#bank-topic input").click(); pg.get_by_role("option", name="归一化").click(); time.sleep(1)
    pg.locator("#bank-table [data-testid=cell-1-0]").click(); time.sleep(1)
    pg.screenshot(path=str(out / "knowledge.png"))
    # 手机: the chat at 390 x 844, after one question
    phone = b.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True, has_touch=True,
                       device_scale_factor=2)
    phone.goto(url); phone.wait_for_selector("#chat-input textarea")
    box = phone.locator("#chat-input textarea")
    box.fill("BN层为什么要加γ和β?"); box.press("Enter")
    expect(phone.locator("#chat-bot .generating")).to_have_count(0, timeout=20000); time.sleep(1)
    phone.screenshot(path=str(out / "phone.png"))
    b.close()
app.close()
print("done", out)
