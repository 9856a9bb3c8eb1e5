"""The `seci` command line: thin typer wrappers over library functions that return data.

Heavy imports (torch, transformers, spaCy) happen inside the commands, so `seci --help` and
`seci ingest` start fast.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Knowledge-creation (SECI) analytics over communications."
)
err = Console(stderr=True)

Inputs = Annotated[list[Path], typer.Argument(help="Files or folders (walked recursively) of any supported kind.")]
TeamsOpt = Annotated[
    Path | None, typer.Option("--teams", help="YAML or CSV mapping people, threads or paths to teams.")
]


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False)],
    )


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[current]}"),
        console=err,
        transient=True,
    )


@app.command()
def ingest(
    inputs: Inputs,
    out: Annotated[Path | None, typer.Option("--out", help="Write items here as JSON Lines (default: stdout).")] = None,
    teams: TeamsOpt = None,
    config: Annotated[Path, typer.Option("--config", help="Ingestion settings.")] = Path("configs/ingest.yaml"),
) -> None:
    """Cut inputs into items and write them as JSON Lines; failures go to errors.jsonl beside --out."""
    from pipeline.ingest import IngestOptions, IngestSummary, TeamRules, ingest
    from pipeline.ingest.driver import find_files
    from pipeline.io import JsonlWriter
    from pipeline.items import InputError

    options = IngestOptions.from_yaml(config) if config.exists() else IngestOptions()
    rules = TeamRules.load(teams) if teams else None
    summary = IngestSummary()
    total = sum(1 for _ in find_files(inputs))
    errors_path = (out.parent if out else Path(".")) / "errors.jsonl"
    sink = JsonlWriter(out) if out else None
    with _progress() as progress, JsonlWriter(errors_path) as errors:
        task = progress.add_task("ingest", total=total, current="")
        for record in ingest(
            inputs, options, rules, summary, on_file=lambda p: progress.update(task, advance=1, current=p.name)
        ):
            if isinstance(record, InputError):
                errors.write(record.to_dict())
            elif sink is not None:
                sink.write(record.to_dict())
            else:
                sys.stdout.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
    if sink is not None:
        sink.close()
    _print_summary(summary, out, errors_path)


def _print_summary(summary: object, out: Path | None, errors_path: Path) -> None:
    data = summary.to_dict()  # type: ignore[attr-defined]
    table = Table(title="ingest", show_header=False)
    for key in ("files", "files_read", "companions", "items", "duplicates", "non_english", "errors", "seconds"):
        table.add_row(key, str(data[key]))
    for source, n in sorted(data["items_by_source"].items()):
        table.add_row(f"items: {source}", str(n))
    for reason, n in sorted(data["errors_by_reason"].items()):
        table.add_row(f"errors: {reason}", str(n))
    err.print(table)
    if out:
        err.print(f"items: {out}")
    if data["errors"]:
        err.print(f"errors: {errors_path}")


@app.command()
def train(
    config: Annotated[Path, typer.Option("--config", help="Training config (YAML), e.g. configs/fast.yaml.")],
    out: Annotated[Path | None, typer.Option("--out", help="Model directory to write.")] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a setting: section.key=value (YAML value), e.g. optim.seed=14."),
    ] = None,
) -> None:
    """Fine-tune the mode and metaphor heads; writes weights, config, calibration and a model card."""
    from pipeline.train.config import TrainConfig
    from pipeline.train.train import train as run_training

    try:
        cfg = TrainConfig.from_yaml(config, overrides or ())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    target = out or Path("models") / cfg.model.name
    # A run takes an hour or more on a CPU: its data counts and per-epoch scores are worth seeing as they come.
    logging.getLogger("pipeline.train").setLevel(logging.INFO)
    with _progress() as progress:
        task = progress.add_task("train", total=None, current="")

        def report(stage: str, done: int, total: int) -> None:
            progress.update(task, description=stage, completed=done, total=total, current="")

        result = run_training(cfg, target, report)
    if result.dev:
        err.print(f"dev macro-F1 {result.dev['macro_f1']:.3f}, accuracy {result.dev['accuracy']:.3f}")
    if result.metaphor_dev:
        err.print(
            f"metaphor dev F1 {result.metaphor_dev['f1']:.3f} at threshold {result.metaphor_dev['threshold']:.3f}"
        )
    err.print(f"model: {target}")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option("--model", help="Model directory.")],
    data: Annotated[
        list[Path],
        typer.Option(
            "--data",
            help="Labelled data: SECI JSONL/CSV/Parquet, or a metaphor CSV. Repeat it to score several files "
            "(e.g. data/seci/dev.jsonl, unseen groups, and data/seci/dev_in_domain.jsonl), each on its own.",
        ),
    ],
    task: Annotated[str, typer.Option("--task", help="seci or metaphor.")] = "seci",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the full report as JSON (a list of reports for several files).")
    ] = False,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    context: Annotated[
        list[Path] | None,
        typer.Option(
            "--context",
            help="A metaphor file whose sentences VUA sentences may read as preceding discourse, labels unused "
            "(repeatable; training reads VUA-18 val with its training files).",
        ),
    ] = None,
) -> None:
    """Score a model on labelled data, with baselines computed in the same run."""
    from pipeline.train.evaluate import evaluate as run_evaluation

    reports = [run_evaluation(model, path, task, device, context or ()) for path in data]
    if as_json:
        sys.stdout.write(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2) + "\n")
        return
    for report in reports:
        _print_evaluation(report)


def _print_evaluation(report: dict) -> None:
    if report["task"] == "seci":
        table = Table(title=f"{report['model']} on {report['data']}")
        for column in ("system", "accuracy", "macro-F1", "ECE", *report["model_metrics"]["per_class"]):
            table.add_column(column)
        systems = [("model", report["model_metrics"])]
        systems += [(name, m) for name, m in report["baselines"].items() if isinstance(m, dict)]
        for name, m in systems:
            per_class = [f"{v['f1']:.3f}" for v in m["per_class"].values()]
            table.add_row(name, f"{m['accuracy']:.3f}", f"{m['macro_f1']:.3f}", f"{m['ece']:.3f}", *per_class)
        Console().print(table)
        mix = report["model_metrics"].get("group_mix")
        if mix and mix["mean"] is not None:
            Console().print(
                f"mode mix per group (total variation distance, predicted against labelled, {len(mix['groups'])} "
                f"groups of 10 or more items): mean {mix['mean']:.3f}"
            )
        return
    table = Table(title=f"{report['model']}: metaphor ({report['level']}) on {report['data']}", show_header=False)
    for key in ("precision", "recall", "f1", "threshold", "sentences", "items", "positives", "support"):
        if key in report:
            value = report[key]
            table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    Console().print(table)


@app.command()
def suggest(
    model: Annotated[Path, typer.Option("--model", help="Model directory.")],
    pool: Annotated[list[Path], typer.Option("--pool", help="Inputs to choose from (files or folders).")],
    n: Annotated[int, typer.Option("-n", help="How many items to suggest.")] = 100,
    out: Annotated[Path | None, typer.Option("--out", help="JSONL file (default: stdout).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
) -> None:
    """The N items the model is least sure about, as JSONL ready to label."""
    from pipeline.train.suggest import suggest as run_suggest

    rows = run_suggest(model, pool, n, device)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if out:
        out.write_text(lines, encoding="utf-8")
        err.print(f"{len(rows)} items: {out}")
    else:
        sys.stdout.write(lines)


@app.command()
def timeline(
    results: Annotated[Path, typer.Argument(help="A `seci batch` output folder.")],
    out: Annotated[Path, typer.Option("--out", help="Report folder to write.")],
    freq: Annotated[str, typer.Option("--freq", help="auto, D, W or M.")] = "auto",
    teams: TeamsOpt = None,
    max_teams: Annotated[int, typer.Option("--max-teams", help="Team sections in the report.")] = 50,
    model: Annotated[
        Path | None,
        typer.Option("--model", help="The model the results were scored with (its card gives the accuracy)."),
    ] = None,
    no_text: Annotated[bool, typer.Option("--no-text", help="Leave the example excerpts out of the report.")] = False,
    metaphor: Annotated[
        bool, typer.Option("--metaphor", help="Show the metaphor rate (with the flag's measured precision).")
    ] = False,
    min_period_items: Annotated[
        int, typer.Option("--min-period-items", help="Periods with fewer items are greyed.")
    ] = 5,
) -> None:
    """Per-team knowledge-spiral timelines, ba and the HTML report (docs/report.md)."""
    from pipeline.report import build_timeline

    if freq not in ("auto", "D", "W", "M"):
        raise typer.BadParameter("--freq must be auto, D, W or M")
    report = build_timeline(
        results,
        out,
        freq=freq,
        teams=teams,
        max_teams=max_teams,
        model_dir=model,
        include_text=not no_text,
        show_metaphor=metaphor,
        min_period_items=min_period_items,
    )
    table = Table(title=f"{report.items} items, {len(report.teams)} teams", show_header=True)
    for column in ("team", "items", "people", "turns", "coherence", "stall", "dominant"):
        table.add_column(column)
    for t in report.teams[:20]:
        coherence = "n/a" if t.coherence is None else f"{t.coherence:.2f}"
        table.add_row(
            t.team,
            str(t.items),
            str(t.participants),
            str(t.turns_completed),
            coherence,
            str(t.stall_mode),
            t.dominant_mode,
        )
    err.print(table)
    err.print(f"report: {report.index_html}")


# -- score and batch (the hot path: pipeline/classify/score.py, batch.py) ------------------------------

ModelOpt = Annotated[Path, typer.Option("--model", help="A saved seci model directory.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
DtypeOpt = Annotated[
    str, typer.Option("--dtype", help="auto (bf16 where native), float32, bfloat16, float16 or int8 (CPU).")
]
DEFAULT_MODEL_DIR = Path("models/seci-fast")


@app.command()
def score(
    path: Annotated[str, typer.Argument(help="A file, a folder, or - to read one text from standard input.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result object of INTERFACE.md.")] = False,
    model: ModelOpt = DEFAULT_MODEL_DIR,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
) -> None:
    """Score one input: its SECI mode, probabilities and deliberate metaphors, per item and overall."""
    from pipeline.classify.rows import ModelNotFound, Scorer
    from pipeline.classify.score import MAX_STDIN_CHARS, ScoreError, score_path, score_text

    if path != "-" and not Path(path).exists():
        err.print(f"[red]no such file or folder: {path}")
        raise typer.Exit(2)
    # Bounded read: one character over the limit is enough for score_text to refuse the input.
    text = sys.stdin.read(MAX_STDIN_CHARS + 1) if path == "-" else None
    try:
        scorer = Scorer.load(model, device=device, dtype=dtype)
        result = score_text(text, scorer) if text is not None else score_path(Path(path), scorer)
    except ModelNotFound as exc:
        err.print(f"[red]{exc}")
        raise typer.Exit(2) from None
    except ScoreError as exc:
        err.print(f"[red]cannot score {path}: {exc}")
        raise typer.Exit(1) from None
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n")
        return
    _print_score(result)


def _print_score(result: object) -> None:
    data = result.to_dict()  # type: ignore[attr-defined]
    out = Console()
    probs = data["probabilities"]
    overall = Table(title=f"SECI mode: [bold]{data['mode']}[/bold]  ({data['model']})", show_header=True)
    for mode in probs:
        overall.add_column(mode, justify="right")
    overall.add_row(*(f"{p:.2f}" for p in probs.values()))
    out.print(overall)
    items = Table(title=f"{len(data['items'])} item(s)", show_lines=False)
    for column in ("id", "mode", "p", "ba", "metaphor", "metaphor spans", "text"):
        items.add_column(column, overflow="fold", max_width=48 if column == "text" else None)
    for row in data["items"]:
        spans = ", ".join(f"{s['text']} ({s['score']:.2f})" for s in row["metaphor_spans"])
        text = row.get("text") or ""
        items.add_row(
            row["id"],
            row["mode"],
            f"{row['probabilities'][row['mode']]:.2f}",
            row["ba"],
            "-" if row["metaphor"] is None else "yes" if row["metaphor"] else "no",
            spans,
            text[:120] + ("..." if len(text) > 120 else ""),
        )
    out.print(items)
    for warning in data["warnings"]:
        err.print(f"[yellow]{warning}")


@app.command()
def batch(
    inputs: Inputs,
    out: Annotated[Path, typer.Option("--out", help="Results folder (items, errors.jsonl, run.json).")],
    fmt: Annotated[str, typer.Option("--format", help="parquet or jsonl.")] = "parquet",
    teams: TeamsOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="Skip items already scored in --out.")] = False,
    engine: Annotated[str, typer.Option("--engine", help="local, or ray (pip install 'seci[ray]').")] = "local",
    device: DeviceOpt = "auto",
    model: ModelOpt = DEFAULT_MODEL_DIR,
    no_text: Annotated[bool, typer.Option("--no-text", help="Leave the item text out of the results.")] = False,
    dtype: DtypeOpt = "auto",
    metaphor: Annotated[
        str, typer.Option("--metaphor", help="rules (spaCy deliberate-metaphor rules) or tokens (model only).")
    ] = "rules",
    chunk_size: Annotated[int, typer.Option("--chunk-size", help="Items per chunk (one part file each).")] = 1024,
    compile: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="torch.compile the model (~20 s to start), for GPUs; on CPU the default fused layers measured faster.",
        ),
    ] = False,
    ray_actors: Annotated[int | None, typer.Option("--ray-actors", help="Model replicas for --engine ray.")] = None,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="Ray cluster address (e.g. auto); default: local Ray.")
    ] = None,
    config: Annotated[Path, typer.Option("--config", help="Ingestion settings.")] = Path("configs/ingest.yaml"),
) -> None:
    """Score every item of an archive into --out, streaming; resumable after a crash with --resume."""
    from rich.progress import TimeRemainingColumn

    from pipeline.classify.batch import BatchOptions, BatchProgress, ModelNotFound, OutputExists, run_batch
    from pipeline.ingest import IngestOptions

    options = IngestOptions.from_yaml(config) if config.exists() else IngestOptions()
    progress = Progress(
        TextColumn("[bold]batch"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[stats]}"),
        console=err,
        transient=True,
    )

    with progress:
        task = progress.add_task("batch", total=None, stats="")

        def on_progress(state: BatchProgress) -> None:
            stats = f"{state.items_done:,} items  {state.items_per_second:,.1f} items/s"
            if state.items_skipped:
                stats += f"  {state.items_skipped:,} skipped"
            if state.errors:
                stats += f"  {state.errors:,} errors"
            progress.update(task, total=state.files_total, completed=state.files_done, stats=stats)

        try:
            batch_options = BatchOptions(
                model_dir=model,
                fmt=fmt,
                teams=teams,
                resume=resume,
                engine=engine,
                device=device,
                dtype=dtype,
                include_text=not no_text,
                metaphor=metaphor,
                chunk_size=chunk_size,
                compile=compile,
                ingest_options=options,
                ray_actors=ray_actors,
                ray_address=ray_address,
            )
            summary = run_batch(inputs, out, batch_options, progress=on_progress)
        except (ModelNotFound, OutputExists, ValueError) as exc:
            err.print(f"[red]{exc}")
            raise typer.Exit(2) from None
    table = Table(title="batch", show_header=False)
    data = summary.to_dict()
    keys = ("inputs", "items", "rows", "skipped_by_resume", "duplicates", "non_english", "errors", "items_per_second")
    for key in keys:
        table.add_row(key, str(data[key]))
    table.add_row("seconds", str(data["timings"].get("total")))
    err.print(table)
    err.print(f"items: {summary.output}")
    if summary.errors:
        err.print(f"errors: {out / 'errors.jsonl'}")


if __name__ == "__main__":
    app()
