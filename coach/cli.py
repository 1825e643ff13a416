"""The ``coach`` command: a thin shell over the engine modules.

Every subcommand parses its options, calls the same functions the web app
calls, and prints. A ``CoachError`` ends the command with its one sentence
on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from .config import Settings
from .errors import CoachError
from .limits import check_id

INDEX_DIR = click.option("--index-dir", type=click.Path(file_okay=False, path_type=Path), envvar="COACH_INDEX_DIR",
                         help="Index folder (default: index/ in the checkout).")


class CoachGroup(click.Group):
    """Turns a CoachError anywhere below into one line on stderr."""

    def invoke(self, ctx):
        import sqlite3

        try:
            return super().invoke(ctx)
        except CoachError as exc:
            click.secho(f"error: {_printable(str(exc))}", fg="red", err=True)
            sys.exit(1)
        except sqlite3.DatabaseError:
            click.secho("error: a database file of the coach is damaged or locked; move the history file "
                        "(COACH_HOME/history.sqlite3) away or rebuild the index with `coach index build`.", fg="red", err=True)
            sys.exit(1)


def _printable(text: str) -> str:
    """Text any terminal encoding can print (lone surrogates from a non-UTF-8 argument become U+FFFD)."""
    return text.encode("utf-8", "replace").decode("utf-8")


@click.group(cls=CoachGroup)
@click.version_option(package_name="interview-coach")
def cli():
    """深度学习/机器学习面试教练 — interview coach for DL/ML interviews."""


@contextmanager
def progress_bar():
    """A rich progress display on stderr; yields the engine's progress callback.

    When stderr is not a terminal (a pipe, a log file), a stage prints one line when it
    starts and one when it ends instead, so a long first build is never silent.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        seen: set[str] = set()

        yield lambda stage, done, total: _plain_progress(seen, stage, done, total)
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def report(stage: str, done: int, total: int) -> None:
            if not total:
                return
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield report


def _plain_progress(seen: set, stage: str, done: int, total: int) -> None:
    """One stderr line when a stage starts and one when it ends."""
    if total and (stage not in seen or done >= total):
        click.echo(f"coach: {stage} {done}/{total}", err=True)
        seen.add(stage)


def knowledge(index_dir: Path | None, progress=None):
    """The knowledge base; without a progress display, a (re)build still reports on stderr."""
    from functools import partial

    from .knowledge import KnowledgeBase

    return KnowledgeBase(Settings.from_env(index_dir=index_dir), progress=progress or partial(_plain_progress, set()))


def print_report(report) -> None:
    for name, count in report.added.items():
        click.echo(f"{'replaced' if name in report.replaced else 'added'} {name}: {count} chunks")
    for name in report.unchanged:
        click.echo(f"unchanged {name}: already indexed")
    for name, message in report.errors.items():
        click.secho(f"skipped {name}: {message}", fg="yellow", err=True)


# ---- index and documents ---------------------------------------------------
@cli.group("index")
def index_group():
    """Build and inspect the search index."""


@index_group.command("build")
@INDEX_DIR
@click.option("--docs", "docs", multiple=True, type=click.Path(path_type=Path), help="Documents to index with the bank.")
def index_build(index_dir, docs):
    """Build the index from the bank plus DOCS (replaces the current index)."""
    with progress_bar() as report:
        kb = knowledge(index_dir, report)
        result = kb.build(list(docs))
    print_report(result)
    counts = kb.data.manifest()["counts"]
    click.echo(f"index ready: {counts['bank_units']} bank items, {counts['doc_units']} document chunks "
               f"in {kb.settings.index_dir}")
    sys.exit(1 if result.errors and not result.added and docs else 0)


@cli.command()
@INDEX_DIR
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--replace", is_flag=True, help="Replace a document already indexed under the same name with this content.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object (progress as JSON lines on stderr).")
@click.option("--draft-questions", is_flag=True,
              help="With an LLM configured: draft interview questions from notes that have none, for review "
                   "(`coach drafts`).")
def ingest(index_dir, paths, replace, as_json, draft_questions):
    """Add documents (.txt .md .html .pdf .docx), or folders of them, to the index.

    A document is known by its path as given (a/notes.md and b/notes.md are two documents)
    and its content; the same name with new content is replaced only with --replace.
    Only regular files are read; links leading outside the folder given are skipped."""
    if as_json:
        def report_json(stage, done, total):
            click.echo(json.dumps({"stage": stage, "done": done, "total": total}), err=True)
        try:
            result = knowledge(index_dir, report_json).ingest(list(paths), replace=replace)
        except CoachError as exc:
            click.echo(json.dumps({"error": str(exc)}, ensure_ascii=False))
            sys.exit(1)
        click.echo(json.dumps({"added": result.added, "replaced": result.replaced, "unchanged": result.unchanged,
                               "errors": result.errors}, ensure_ascii=False))
        sys.exit(1 if result.errors else 0)
    if draft_questions and not knowledge(index_dir).settings.llm_url:
        raise CoachError("--draft-questions needs a model: set COACH_LLM_URL (see docs/llm.md).")
    with progress_bar() as report:
        kb = knowledge(index_dir, report)
        result = kb.ingest(list(paths), replace=replace)
    print_report(result)
    if draft_questions:
        _draft(kb, [*result.added, *result.replaced])
    sys.exit(1 if result.errors else 0)


def _draft(kb, sources: list[str]) -> None:
    from .drafts import draft_documents
    from .llm import make_llm

    click.echo(f"drafting questions with the model from {len(sources)} document(s)...", err=True)
    drafts, skipped = draft_documents(kb, make_llm(kb.settings), sources)
    for draft in drafts:
        click.echo(f"drafted {len(draft.items)} question(s) from {draft.source}: review with "
                   f"`coach drafts show {draft.source}`, then `coach drafts accept {draft.source}`")
    for source, why in skipped.items():
        click.secho(f"no draft for {source}: {why}", fg="yellow")


@cli.group()
def drafts():
    """Questions a model drafted from your notes: review, then accept or discard."""


@drafts.command("list")
def drafts_list():
    """Drafts waiting for review."""
    from .config import Settings
    from .drafts import list_drafts

    found = list_drafts(Settings.from_env())
    if not found:
        click.echo("no drafts (make some with `coach ingest FILE --draft-questions` and a model configured)")
    for draft in found:
        click.echo(f"{draft.source}  {len(draft.items)} question(s)  drafted by {draft.model}  {draft.created}")


@drafts.command("show")
@click.argument("source")
def drafts_show(source):
    """Print the drafted questions, key points and answers for SOURCE."""
    from .config import Settings
    from .drafts import as_markdown, load

    click.echo(as_markdown(load(Settings.from_env(), check_id(source, "The document name"))))


@drafts.command("accept")
@INDEX_DIR
@click.argument("source")
def drafts_accept(index_dir, source):
    """Add the draft for SOURCE to your documents (as "AI草稿·SOURCE"): interviews and grading can use it."""
    from .drafts import accept

    with progress_bar() as report:
        result = accept(knowledge(index_dir, report), check_id(source, "The document name"))
    print_report(result)
    sys.exit(1 if result.errors else 0)


@drafts.command("discard")
@click.argument("source")
def drafts_discard(source):
    """Delete the draft for SOURCE."""
    from .config import Settings
    from .drafts import discard

    discard(Settings.from_env(), check_id(source, "The document name"))
    click.echo(f"discarded the draft for {source}")


WORKER_MEMORY = 6 * 2**30  # bytes of address space an ingest worker may use


@cli.command("ingest-worker", hidden=True)
def ingest_worker():
    """The web app's upload worker: one JSON job a line on stdin ({"paths": [...], "replace": bool,
    "user": key or absent}); progress lines and one result line ({"added", "replaced", "unchanged",
    "errors"} or {"error"}) on stdout. With "user" (``accounts.user_key``, 24 hex digits) the files go
    to that user's own document index, beside the shared one."""
    import re
    from dataclasses import replace as changed

    from .knowledge import KnowledgeBase, user_knowledge

    _lower_priority()
    progress = lambda stage, done, total: _emit({"stage": stage, "done": done, "total": total})  # noqa: E731
    kb = knowledge(None, progress)
    kb.embedder  # noqa: B018 - loaded once, before the first job
    users: dict[str, KnowledgeBase] = {}
    for line in sys.stdin:
        try:
            job = json.loads(line)
            target = kb
            key = job.get("user")
            if key is not None:
                if not (isinstance(key, str) and re.fullmatch(r"[0-9a-f]{24}", key)):
                    raise ValueError("bad user key")
                if key not in users:
                    home = kb.settings.home / "users" / key
                    if len(users) > 64:  # a worker's memory stays bounded however many users upload
                        users.clear()
                    users[key] = user_knowledge(changed(kb.settings, home=home, index_dir=home / "index", user=key),
                                                progress, kb)
                target = users[key]
            result = target.ingest([Path(p) for p in job["paths"]], replace=bool(job.get("replace")))
        except CoachError as exc:
            _emit({"error": str(exc)})
            continue
        except (ValueError, KeyError, TypeError):
            _emit({"error": "The upload request was malformed."})
            continue
        _emit({"added": result.added, "replaced": result.replaced, "unchanged": result.unchanged, "errors": result.errors})


def _emit(event: dict) -> None:
    sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _lower_priority() -> None:
    """The web app's ingest worker: below the chat workers in CPU priority, and bounded in memory."""
    import os
    import resource

    try:
        os.nice(10)
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = WORKER_MEMORY if hard == resource.RLIM_INFINITY else min(WORKER_MEMORY, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (OSError, ValueError):
        pass


@cli.command()
@INDEX_DIR
def sources(index_dir):
    """List indexed documents with their chunk counts."""
    listed = knowledge(index_dir).sources()
    if not listed:
        click.echo("no documents indexed yet (the question bank is always indexed); add some with `coach ingest`")
    for name, info in sorted(listed.items()):
        click.echo(f"{info['chunks']:5d}  {name}")


@cli.command()
@INDEX_DIR
@click.argument("source")
def remove(index_dir, source):
    """Remove one indexed document by its file name."""
    removed = knowledge(index_dir).remove_source(source)
    click.echo(f"removed {source}: {removed} chunks")


@cli.command()
@INDEX_DIR
@click.argument("query", required=False)
@click.option("-k", "k", default=5, show_default=True, type=click.IntRange(1, 100), help="Number of hits.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of hits.")
@click.option("--batch", type=click.File("rb"), help="One query a line; one JSON array a line out ({\"error\": ...} for a bad line).")
@click.option("--mode", type=click.Choice(["hybrid", "bm25", "dense"]), default="hybrid", show_default=True)
def search(index_dir, query, k, as_json, batch, mode):
    """Search the bank and your documents."""
    from .limits import check_query

    if bool(query) == bool(batch):
        raise CoachError("Give either a QUERY or --batch FILE, not both or neither.")
    kb = knowledge(index_dir)
    if batch:
        for line in batch_lines(batch):
            try:
                if isinstance(line, CoachError):
                    raise line
                hits = kb.search(check_query(line.strip()), k=k, mode=mode) if line.strip() else []
                click.echo(json.dumps([h.to_json() for h in hits], ensure_ascii=False))
            except CoachError as exc:
                click.echo(json.dumps({"error": str(exc)}, ensure_ascii=False))
        return
    hits = kb.search(check_query(query), k=k, mode=mode)
    if as_json:
        click.echo(json.dumps([h.to_json() for h in hits], ensure_ascii=False, indent=1))
        return
    for hit in hits:
        where = f"bank:{hit.item_id}" if hit.item_id else f"{hit.source} #{hit.position}"
        click.secho(f"{hit.rank}. {hit.title or hit.text[:40]}  [{where}] score {hit.score:.4f}  "
                    f"relevance {hit.relevance:.2f}", bold=True)
        click.echo("   " + hit.text[:160].replace("\n", " "))


# ---- chat -------------------------------------------------------------------
@cli.command()
@INDEX_DIR
@click.argument("question", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the answer and its sources as JSON.")
def ask(index_dir, question, as_json):
    """Ask a question; the answer comes from the knowledge base with its sources.

    Without QUESTION, starts an interactive chat (follow-ups like "那LN呢?" work).
    """
    from dataclasses import asdict

    from .chat import ChatEngine
    from .llm import make_llm

    kb = knowledge(index_dir)
    engine = ChatEngine(kb, make_llm(kb.settings))
    if question:
        answer = engine.answer(question)
        if as_json:
            click.echo(json.dumps({"answer": answer.text, "query": answer.query, "grounded": answer.grounded,
                                   "relevance": answer.relevance, "model": answer.model, "llm_note": answer.llm_note,
                                   "sources": [asdict(s) for s in answer.sources]},
                                  ensure_ascii=False, indent=1))
        else:
            _print_answer(answer)
        return
    previous, history = None, []
    while True:
        try:
            question = click.prompt("\n问", prompt_suffix="> ").strip()
        except (EOFError, click.Abort):
            return
        try:
            answer = engine.answer(question, previous, history)
        except CoachError as exc:
            click.secho(str(exc), fg="yellow")
            continue
        _print_answer(answer)
        previous = answer.query
        history = (history + [{"role": "user", "content": question}, {"role": "assistant", "content": answer.text}])[-6:]


def _print_answer(answer) -> None:
    click.echo(answer.text)
    roles = {"answer": "答案", "related": "可能相关"}
    for src in answer.sources:
        click.secho(f"  [{src.n}] {roles.get(src.role, src.role)} · {src.label}  (relevance {src.relevance:.2f})", fg="cyan")


# ---- grading ----------------------------------------------------------------
@cli.command()
@INDEX_DIR
@click.option("--question-id", help="A bank item id (see `coach bank list`).")
@click.option("--question", help="The question as free text; matched to the bank and your documents.")
@click.option("--answer", help="The answer to grade.")
@click.option("--answer-file", type=click.File("r", encoding="utf-8"), help="Read the answer from a file ('-' for stdin).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--batch", type=click.File("rb"),
              help='JSONL: {"question" or "question_id", "answer"} a line; one JSON result a line out '
                   '({"error": ...} for a bad line).')
def grade(index_dir, question_id, question, answer, answer_file, as_json, batch):
    """Grade an answer: score, covered and missed key points, misconceptions, model answer."""
    from .grade import Grader
    from .llm import make_llm

    kb = knowledge(index_dir)
    grader = Grader(kb, llm=make_llm(kb.settings))
    if batch:
        for line in batch_lines(batch):
            if isinstance(line, CoachError):
                click.echo(json.dumps({"error": str(line)}, ensure_ascii=False))
            elif line.strip():
                click.echo(json.dumps(_grade_line(grader, line), ensure_ascii=False))
        return
    if bool(question_id) == bool(question):
        raise CoachError("Give exactly one of --question-id or --question.")
    if (answer is None) == (answer_file is None):
        raise CoachError("Give exactly one of --answer or --answer-file.")
    result = grader.grade(answer if answer is not None else answer_file.read(), item_id=question_id, question=question)
    if as_json:
        click.echo(json.dumps(grade_json(result), ensure_ascii=False, indent=1))
    else:
        print_grade(result)


def grade_json(result) -> dict:
    """The documented JSON shape of a grade."""
    keys = ("score", "verdict", "item_id", "covered", "missing", "misconceptions", "feedback", "model_answer",
            "sources", "basis", "question", "flags")
    full = result.to_json()
    out = {k: full[k] for k in keys}
    for key in ("llm_feedback", "second_opinion", "llm_note"):  # only with a model configured
        if full.get(key):
            out[key] = full[key]
    return out


def batch_lines(stream):
    """The lines of a --batch file as text; a line that is not UTF-8 or is too long is a
    ``CoachError`` in its place, so one bad line never stops the others."""
    from .limits import MAX_LINE_CHARS

    while True:
        raw = stream.readline(4 * MAX_LINE_CHARS + 1)
        if not raw:
            return
        if len(raw) > 4 * MAX_LINE_CHARS and not raw.endswith(b"\n"):
            while (rest := stream.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield CoachError(f"This line is longer than {MAX_LINE_CHARS} characters; shorten it.")
            continue
        try:
            line = raw.decode("utf-8-sig").rstrip("\r\n")
        except UnicodeDecodeError:
            yield CoachError("This line is not valid UTF-8; save the file as UTF-8.")
            continue
        yield line if len(line) <= MAX_LINE_CHARS else CoachError(
            f"This line is longer than {MAX_LINE_CHARS} characters; shorten it.")


def _grade_line(grader, line: str) -> dict:
    from .limits import check_answer, check_id, check_query

    try:
        row = json.loads(line)
        if not isinstance(row, dict) or "answer" not in row or not ({"question", "question_id"} & set(row)):
            raise CoachError('Each line needs {"question" or "question_id", "answer"}.')
        if row["answer"] is None:
            raise CoachError('"answer" must be text; use "" for an empty answer.')
        item_id = check_id(row.get("question_id"), '"question_id"') or None
        question = check_query(row["question"]) if row.get("question") is not None and not item_id else None
        return grade_json(grader.grade(check_answer(row["answer"]), item_id=item_id, question=question))
    except RecursionError:
        return {"error": "This line nests too deeply; write one flat JSON object a line."}
    except ValueError:
        return {"error": "This line is not valid JSON; write one JSON object a line."}
    except CoachError as exc:
        return {"error": str(exc)}


def print_grade(result) -> None:
    if result.score is None:
        click.secho(f"{result.verdict}: {result.feedback[0]}", fg="yellow")
    else:
        click.secho(f"{result.score:.1f}/10  {result.verdict}", bold=True)
    where = ({"bank": f"bank:{result.item_id}", "document": ", ".join(str(s["source"]) for s in result.sources)}
             .get(result.basis, "no matching question"))
    click.echo(f"题目: {result.question}  [{where}]")
    for p in result.covered:
        click.secho(f"  ✓ {p.point}", fg="green")
        click.echo(f"      ↳ {p.evidence}")
    for p in result.missing:
        click.secho(f"  ✗ {p.point}  [{p.source}]", fg="red")
    for m in result.misconceptions:
        click.secho(f"  ! {m.sentence} → {m.correction}", fg="magenta")
    for line in result.feedback:
        click.echo(f"  · {line}")
    if result.llm_feedback:
        click.echo("评语（大模型改写,分数仍是离线评分）:\n  " + result.llm_feedback)
    if result.second_opinion:
        click.echo(f"大模型的第二意见: {result.second_opinion['score']:.1f}/10  {result.second_opinion['reason']}"
                   "（仅供参考,不计入分数）")
    if result.llm_note:
        click.secho(f"  ({result.llm_note})", fg="yellow")
    click.echo("参考答案:\n" + result.model_answer)


# ---- bank -------------------------------------------------------------------
@cli.group()
def bank():
    """Check and summarise the question bank."""


@bank.command("check")
def bank_check():
    """Validate the bank and glossary: schema, ids, follow-ups, near-duplicates, one-character terms,
    merged glossary concepts, reference answers or corrections that raise their own misconception, and
    misconception probes (sentences that must or must not raise a claim) that fail."""
    from .bank import Bank, load_distinct
    from .grade import probe_problems, self_triggered
    from .knowledge import KnowledgeBase

    settings = Settings.from_env()
    loaded = Bank.load(settings.corpus_dir)
    problems = loaded.check(load_distinct(settings.corpus_dir))
    embedder = KnowledgeBase(settings).embedder
    problems += self_triggered(embedder, loaded)
    probes = settings.corpus_dir / "eval" / "misconceptions" / "probes.jsonl"
    if probes.exists():
        rows = [json.loads(line) for line in probes.read_text(encoding="utf-8").splitlines() if line.strip()]
        problems += probe_problems(embedder, loaded, rows)
    for p in problems:
        click.secho(p, fg="yellow")
    click.echo(f"{len(loaded.items)} items, {len(loaded.glossary.concepts)} glossary concepts, {len(problems)} problems")
    sys.exit(1 if problems else 0)


@bank.command("stats")
def bank_stats():
    """Items per topic and difficulty."""
    from .bank import Bank

    loaded = Bank.load(Settings.from_env().corpus_dir)
    click.echo(f"{'topic':<16}{'name':<14}{'d1':>4}{'d2':>4}{'d3':>4}{'all':>5}")
    for topic, counts in loaded.stats().items():
        name = loaded.topics[topic].zh
        click.echo(f"{topic:<16}{name:<14}{counts[1]:>4}{counts[2]:>4}{counts[3]:>4}{sum(counts.values()):>5}")
    click.echo(f"{'total':<30}{len(loaded.items):>17}")


@bank.command("list")
@click.option("--topic", help="Only this topic id.")
def bank_list(topic):
    """Item ids with their questions."""
    from .bank import Bank

    for item in Bank.load(Settings.from_env().corpus_dir).items.values():
        if not topic or item.topic == topic:
            click.echo(f"{item.id:<32} d{item.difficulty}  {item.question}")


# ---- evaluation ---------------------------------------------------------------
@cli.group("eval")
def eval_group():
    """Benchmarks: quality and speed, printed as tables."""


@eval_group.command("retrieval")
@INDEX_DIR
@click.option("--set", "dev_set", type=click.Path(exists=True, path_type=Path), help="A .jsonl file or folder.")
def eval_retrieval(index_dir, dev_set):
    """R@1, R@5, MRR@10 and latency for BM25, dense and hybrid on the dev set."""
    from .evaluate import evaluate_retrieval, format_table

    with progress_bar() as report:
        kb = knowledge(index_dir, report)
        rows = evaluate_retrieval(kb, dev_set)
    click.echo(format_table(rows))


@eval_group.command("grading")
@INDEX_DIR
@click.option("--set", "dev_set", type=click.Path(exists=True, path_type=Path), help="A .jsonl file or folder.")
@click.option("--by-kind", is_flag=True, help="Also print mean gold and predicted score per answer kind.")
@click.option("--blind", is_flag=True, help="Also measure the blind set (tune and held-out halves) and sample page 003.")
@click.option("--fit", is_flag=True, help="First refit the score model on the blind tune half and grading_train/.")
@click.option("--seeds", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder holding the sample pages (default ../shared/seeds).")
def eval_grading(index_dir, dev_set, by_kind, blind, fit, seeds):
    """Spearman, MAE, quadratic weighted kappa, on/off-topic AUC and latency of the grader."""
    from .evaluate import evaluate_grading, format_table, grading_by_kind
    from .evaluate_grading import evaluate_blind, evaluate_seed_page, fit_score_model, format_blind
    from .grade import Grader

    with progress_bar() as report:
        kb = knowledge(index_dir, report)
        grader = Grader(kb)
        if fit:
            model = fit_score_model(grader, kb.settings.corpus_dir)
            click.echo(f"score model: {model.fitted_on}", err=True)
        click.echo(format_table([evaluate_grading(grader, dev_set)]))
    if by_kind:
        click.echo(format_table(grading_by_kind(grader, dev_set)))
    if blind or fit:
        click.echo("\nBlind set:\n" + format_blind(evaluate_blind(grader, kb.settings.corpus_dir)))
        page = Path(seeds or kb.settings.corpus_dir.parent.parent / "shared" / "seeds") / "003_7b40eaba8e657ec8.txt"
        if page.exists():
            click.echo("\nSample page 003: " + json.dumps(evaluate_seed_page(grader, page), ensure_ascii=False))


@eval_group.command("scale")
@click.option("--chunks", default=10_000, show_default=True, type=click.IntRange(100, 200_000))
def eval_scale(chunks):
    """Build time and search latency with the bank plus CHUNKS synthetic document chunks."""
    from .evaluate import evaluate_scale, format_table

    with progress_bar() as report:
        row = evaluate_scale(knowledge(None, report), chunks)
    click.echo(format_table([row]))


@eval_group.command("startup")
@click.option("--runs", default=5, show_default=True, type=click.IntRange(1, 50))
@click.option("--serve-runs", default=3, show_default=True, type=click.IntRange(0, 20))
def eval_startup(runs, serve_runs):
    """Cold start of search, ask and grade as whole processes (time and peak memory), and serve's ready time."""
    from .evaluate import format_table
    from .evaluate_startup import evaluate_startup

    try:
        with progress_bar() as report:
            rows = evaluate_startup(runs, serve_runs, report)
    except RuntimeError as exc:
        raise CoachError(str(exc)) from None
    click.echo(format_table(rows))


@eval_group.command("abstain")
@click.option("--set", "dev_set", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The abstention set folder (default corpus/eval/abstain).")
@click.option("--seeds", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder holding the two sample pages (default ../shared/seeds).")
@click.option("--fit", is_flag=True, help="Refit the relevance model on the tune half first (writes resources/relevance.json).")
@click.option("--tune-only", is_flag=True, help="With --fit: fit on the tune half alone, without train/.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def eval_abstain(dev_set, seeds, fit, tune_only, as_json):
    """Answered, right-when-answered and wrong-answer rates, per half of the abstention set."""
    from .config import Settings
    from .evaluate_abstain import evaluate_abstain, format_report

    with progress_bar() as report:
        result = evaluate_abstain(Settings.from_env(), dev_set, seeds, fit=fit, progress=report,
                                  with_train=not tune_only)
    click.echo(json.dumps(result, ensure_ascii=False, indent=1) if as_json else format_report(result))


@eval_group.command("coverage")
@click.option("--set", "files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Judged coverage files (default corpus/eval/coverage/*_judged.jsonl).")
def eval_coverage(files):
    """Share of blind interview questions a bank item answers, and how often chat finds that item."""
    from .evaluate_coverage import evaluate_coverage, format_coverage

    with progress_bar() as report:
        kb = knowledge(None, report)
        kb.data
    files = list(files) or sorted((kb.settings.corpus_dir / "eval" / "coverage").glob("*_judged.jsonl"))
    if not files:
        raise CoachError("No judged coverage files found; pass --set FILE.")
    click.echo(format_coverage(evaluate_coverage(kb, files)))


# ---- mock interview -----------------------------------------------------------
def _open_history(settings=None):
    from .history import History

    return History.open(settings or Settings.from_env())


def _interview_engine(kb):
    """Load or build the index (with progress) before the first question, then the grader."""
    from .grade import Grader

    quiet = kb.progress
    with progress_bar() as report:
        kb.progress = report
        kb.data
    kb.progress = quiet  # the bar is gone once the index is ready
    from .llm import make_llm

    return Grader(kb, llm=make_llm(kb.settings))


def _topic_ids(values) -> tuple[str, ...]:
    return tuple(t.strip() for v in values for t in v.split(",") if t.strip())


@cli.command("interview")
@click.option("--topics", multiple=True, metavar="T", help="Topic ids, repeated or comma-separated (default: all).")
@click.option("--difficulty", type=click.Choice(["1", "2", "3", "adaptive"]), default="adaptive", show_default=True)
@click.option("--questions", default=5, show_default=True, type=click.IntRange(1, 50),
              help="Main questions; follow-ups come on top.")
@click.option("--time-limit", type=click.IntRange(min=1),
              help="Seconds per answer; a late answer is graded and marked.")
@click.option("--seed", type=int, help="Fix the choice of questions (default: derived from the session id).")
@click.option("--resume", "resume_id", metavar="SESSION",
              help="Continue an unfinished session (`coach history` lists ids).")
def interview_command(topics, difficulty, questions, time_limit, seed, resume_id):
    """模拟面试: questions, grades, one follow-up each, a report. Answers can be piped on stdin, one a line."""
    from .interview import InterviewConfig, InterviewSession

    kb = knowledge(None)
    level = difficulty if difficulty == "adaptive" else int(difficulty)
    config = InterviewConfig(_topic_ids(topics), level, questions, time_limit)
    # bank topics are checked before indexing; "docs" and "doc:<file>" need the index's documents
    wants_docs = any(t == "docs" or t.startswith("doc:") for t in config.topics)
    config = config.checked(kb.catalog if wants_docs else kb.bank)
    grader, history = _interview_engine(kb), _open_history(kb.settings)
    if resume_id:
        session = InterviewSession.resume(kb, grader, history, resume_id)
    else:
        session = InterviewSession.start(kb, grader, history, config, seed=seed)
    _run_interview(session, kb.settings)


@cli.command("review")
@click.option("--questions", default=5, show_default=True, type=click.IntRange(1, 50))
def review_command(questions):
    """复习: a session of the questions whose spaced-repetition review is due."""
    from .interview import InterviewConfig, InterviewSession, due_items, interview_text

    kb = knowledge(None)
    history = _open_history(kb.settings)
    if not due_items(history, kb.bank):  # checked before loading the index: nothing to grade
        click.echo(interview_text()["cli"]["nothing_due"])
        return
    session = InterviewSession.start(kb, _interview_engine(kb), history,
                                     InterviewConfig(questions=questions, review_only=True))
    _run_interview(session, kb.settings)


@cli.command("history")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="Sessions to list.")
def history_command(limit):
    """Past interview sessions and progress per topic."""
    from .interview import interview_text

    text, statuses = interview_text()["cli"], interview_text()["report"]["statuses"]
    with _open_history() as store:
        sessions, progress = store.list_sessions(limit), store.topic_progress()
    if not sessions:
        click.echo(text["no_sessions"])
        return
    score = lambda value: "-" if value is None else f"{value:.1f}/10"  # noqa: E731
    click.secho(text["sessions"], bold=True)
    for s in sessions:
        click.echo(text["session_line"].format(
            date=s.started_at.astimezone().strftime("%Y-%m-%d %H:%M"), status=statuses.get(s.status, s.status),
            questions=s.questions, score=score(s.mean_score), topics=", ".join(s.topics) or "-", id=s.id))
    click.secho(text["progress"], bold=True)
    for p in progress:
        click.echo(text["progress_line"].format(topic=p.topic, answers=p.answers, items=p.items,
                                                score=score(p.mean_score), recent=score(p.recent_score), due=p.due))


def _run_interview(session, settings) -> None:
    """Ask, read, grade and print until the session ends; end of input finishes it with a report."""
    import time

    from rich.console import Console
    from rich.markdown import Markdown

    from .errors import InputError
    from .interview import interview_text

    text = interview_text()
    console = Console(soft_wrap=True, highlight=False)
    interactive = sys.stdin.isatty()
    console.print(text["cli"]["session"].format(id=session.id), style="dim", markup=False)
    try:
        while not session.finished:
            _show_question(console, session.current, sum(not t.is_follow_up for t in session.turns) + 1, text,
                           session.kb.catalog.topics)
            shown = time.monotonic()  # the clock starts when the candidate can read the question
            answer = _read_answer(console, interactive, text["cli"]["prompt"])
            if answer is None:
                session.stop()
                console.print(("\n" if interactive else "") + text["cli"]["stopped"], style="yellow", markup=False)
                break
            try:
                _show_grade(console, session.answer(answer, elapsed=time.monotonic() - shown), text)
            except InputError as exc:  # e.g. too long: say so and ask again
                console.print(f"error: {exc}", style="red", markup=False)
    except KeyboardInterrupt:  # Ctrl-C pauses (resumable); end of input (Ctrl-D, EOF) finishes
        console.print("\n" + text["cli"]["paused"].format(id=session.id), style="yellow", markup=False)
        sys.exit(130)
    report = session.report()
    path = report.save(settings.home / "reports")
    if console.is_terminal:
        console.print(Markdown(report.to_markdown()), soft_wrap=False)  # wrap, never crop, the report
    else:
        click.echo("\n" + report.to_markdown())
    console.print(text["cli"]["saved"].format(path=path), markup=False)


def _read_answer(console, interactive: bool, prompt: str) -> str | None:
    """A prompted line on a terminal, else the next line of stdin; None at the end of input."""
    if interactive:
        try:
            return console.input(prompt)
        except EOFError:
            return None
    line = sys.stdin.readline()
    if not line:
        return None
    click.echo(f"> {line.strip()}")
    return line.rstrip("\r\n")


def _show_question(console, question, number: int, text: dict, topics: dict) -> None:
    labels = text["labels"]
    head = labels["follow_up"] if question.is_follow_up else labels["question"].format(n=number)
    topic = topics[question.topic].zh if question.topic in topics else question.topic
    meta = [topic, labels["difficulty"].format(d=question.difficulty)]
    if question.time_limit:
        meta.append(labels["time_limit"].format(limit=f"{question.time_limit:g}"))
    console.print(f"\n{head}  ({' · '.join(meta)})", style="bold cyan", markup=False)
    console.print(question.text, style="bold", markup=False)


def _show_grade(console, result, text: dict) -> None:
    from .grade import feedback_text

    lines = text["cli"]
    color = "green" if result.score >= 6.5 else "yellow" if result.score >= 4.5 else "red"
    console.print(lines["score"].format(score=f"{result.score:.1f}", verdict=result.grade.verdict),
                  style=f"bold {color}", markup=False)
    if result.timed_out:
        console.print(lines["timed_out"].format(elapsed=result.elapsed, limit=result.question.time_limit),
                      style="yellow", markup=False)
    if result.skipped:  # nothing to tick off: show what a good answer says
        console.print(lines["model_answer"] + "\n" + result.grade.model_answer.strip(), markup=False)
        return
    for point in result.grade.covered:
        console.print(lines["covered"].format(point=point.point), style="green", markup=False)
    for point in result.grade.missing:
        console.print(lines["missed"].format(point=point.point), style="red", markup=False)
    for found in result.grade.misconceptions:
        console.print("  ! " + feedback_text()["misconception"].format(correction=found.correction),
                      style="magenta", markup=False)


# ---- accounts -----------------------------------------------------------------
PASSWORD_STDIN = click.option("--password-stdin", is_flag=True,
                              help="Read the password as one line from stdin (for scripts) instead of prompting.")


@cli.group("users")
def users_group():
    """Accounts for the web app: a users file of names and password hashes (see docs/deploy.md)."""


def _users():
    from .accounts import open_users

    return open_users(Settings.from_env())  # the users file, or the database's users table


def _read_password(password_stdin: bool) -> str:
    """A new password: one line of stdin, or typed twice at a hidden prompt (re-asked until valid)."""
    from .accounts import MAX_PASSWORD_CHARS, check_password
    from .errors import InputError

    if password_stdin:
        limit = 4 * MAX_PASSWORD_CHARS + 2
        line = click.get_binary_stream("stdin").readline(limit + 1)
        if len(line) > limit:
            raise InputError(f"The password on stdin is too long; use at most {MAX_PASSWORD_CHARS} characters.")
        if not line.strip(b"\r\n"):
            raise InputError("No password on stdin; pipe one line holding the password.")
        try:
            return check_password(line.decode("utf-8-sig").rstrip("\r\n"))
        except UnicodeDecodeError:
            raise InputError("The password on stdin is not UTF-8; send it as UTF-8 text.") from None

    def checked(value: str) -> str:
        try:
            return check_password(value)
        except InputError as exc:
            raise click.UsageError(str(exc)) from None

    return click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password", value_proc=checked)


@users_group.command("add")
@click.argument("name")
@PASSWORD_STDIN
def users_add(name, password_stdin):
    """Add a user called NAME, asking for their password twice.

    A name has 1 to 64 letters (any script), digits and _ . @ - characters; a password 8 to 1024 characters."""
    from .accounts import check_name
    from .errors import InputError

    users, name = _users(), check_name(name)
    if name in users:  # before asking for a password; checked again under the lock
        raise InputError(f"There is already a user named {name}; choose another name or change "
                         f"their password with `coach users passwd {name}`.")
    name = users.add(name, _read_password(password_stdin))
    click.echo(f"Added user {name}.")


@users_group.command("passwd")
@click.argument("name")
@PASSWORD_STDIN
def users_passwd(name, password_stdin):
    """Give the user NAME a new password."""
    from .accounts import check_name
    from .errors import InputError

    users, name = _users(), check_name(name)
    if name not in users:
        raise InputError(f"There is no user named {name}; `coach users list` shows the users.")
    users.set_password(name, _read_password(password_stdin))
    click.echo(f"Changed the password of {name}.")


@users_group.command("remove")
@click.argument("name")
def users_remove(name):
    """Remove the user NAME (their history and documents are kept)."""
    from .accounts import check_name, open_users, user_key

    settings = Settings.from_env()
    name = check_name(name)
    open_users(settings).remove(name)
    click.echo(f"Removed user {name}. Their history and documents stay in "
               f"{settings.home / 'users' / user_key(name)} until you delete it.")


@users_group.command("list")
def users_list():
    """The users and when each was added (never their password hashes)."""
    from datetime import datetime, timezone

    users = _users().info()
    if not users:
        click.echo("No users: the app runs without a login.")
    for user in users:
        try:
            when = datetime.fromisoformat(user["created"])
            when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
            created = when.strftime("%Y-%m-%d %H:%M UTC")
        except ValueError:
            created = user["created"]
        click.echo(f"{user['name']}  added {created}")


# ---- web app ------------------------------------------------------------------
@cli.command()
@INDEX_DIR
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 exposes the app to your network (set --auth then).")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(1, 65535))
@click.option("--auth", envvar="COACH_AUTH", metavar="USER:PASS", help="Require this login (or set COACH_AUTH).")
@click.option("--share", is_flag=True, help="Also open a public gradio.live link (off by default).")
@click.option("--trusted-header", envvar="COACH_TRUSTED_HEADER", metavar="NAME",
              help="Take the user name from this request header set by your reverse proxy (e.g. X-Forwarded-User); "
                   "only when the proxy is the sole way in (or set COACH_TRUSTED_HEADER).")
def serve(index_dir, host, port, auth, share, trusted_header):
    """Open the browser app: chat, mock interview, grading, knowledge base, progress.

    With users in the users file (`coach users add`), each signs in and has their own history,
    reports and documents; without, the app is one person's and needs no login."""
    from .accounts import open_users
    from .webapp import serve as serve_app

    settings = Settings.from_env(index_dir=index_dir)
    accounts = open_users(settings)
    if host not in ("127.0.0.1", "localhost", "::1") and not (auth or len(accounts) or trusted_header):
        click.secho(f"warning: listening on {host} without accounts or --auth; anyone who can reach it can use the app.",
                    fg="yellow", err=True)
    if trusted_header and host not in ("127.0.0.1", "localhost", "::1"):
        click.secho(f"warning: --trusted-header on {host}: anyone who reaches this port directly can claim any user; "
                    "bind to 127.0.0.1 behind the proxy.", fg="yellow", err=True)
    serve_app(host=host, port=port, auth=auth or "", share=share, settings=settings, accounts=accounts,
              trusted_header=trusted_header)


def main():
    cli(prog_name="coach")


if __name__ == "__main__":
    main()
