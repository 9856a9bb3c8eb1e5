"""The `seci` command line: thin typer wrappers over library functions that return data.

Heavy imports (torch, spaCy) happen inside the commands, so `seci --help` and `seci ingest` start fast.

A user's mistake (a missing file, a bad option, a teams file that does not parse, a results folder that is
already taken) ends in one line on stderr that says what to fix and a non-zero exit, found before any model
is loaded; `seci --verbose COMMAND` shows the traceback instead.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import typer.core
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

# Plain help (no rich markup, so `seci[ray]` prints as written), with option values named (DIR, FILE) rather than
# typed (<path>, <bool>, <list[Path]>): flags show no value and arguments their name alone.
typer.core.TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]
typer.core.TyperOption.display_type_rich = lambda self, ctx: (  # type: ignore[method-assign]
    self.metavar if self.metavar is not None else None if self.is_flag else self.type.name.upper()
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Knowledge-creation (SECI) analytics over communications.",
)
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
_verbose = {"on": False}

Inputs = Annotated[
    list[Path], typer.Argument(metavar="INPUT", help="Files or folders (walked recursively) of any supported kind.")
]
TeamsOpt = Annotated[
    Path | None, typer.Option("--teams", metavar="FILE", help="YAML or CSV mapping people, threads or paths to teams.")
]
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16", "int8")


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log debug messages; show the traceback of an error.")
    ] = False,
) -> None:
    from rich.logging import RichHandler

    _verbose["on"] = verbose
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False)],
    )


class UserError(Exception):
    """A mistake the user can fix; its message says how."""


def fail(message: object, code: int = 2) -> typer.Exit:
    """Print one line on stderr (the message with its line breaks folded) and return the exit to raise."""
    sys.stderr.write(f"error: {' '.join(str(message).split())}\n")
    return typer.Exit(code)


def one_line_errors(command: F) -> F:
    """Run a command so that an error ends in one line on stderr and a non-zero exit (a traceback with --verbose):
    2 for a user's mistake, 1 for anything else, 130 for Ctrl-C."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            if _verbose["on"]:
                raise
            raise fail("interrupted", 130) from None
        except Exception as exc:
            if _verbose["on"]:
                raise
            if isinstance(exc, typer.BadParameter):  # an option the user gave
                raise fail(exc.format_message()) from None
            if _is_user_error(exc):
                raise fail(exc) from None
            raise fail(f"{type(exc).__name__}: {exc} (seci --verbose ... shows the traceback)", 1) from None

    return wrapper  # type: ignore[return-value]


def _is_user_error(exc: Exception) -> bool:
    from pipeline.classify.rows import ModelNotFound
    from pipeline.classify.store import OutputExists

    return isinstance(exc, UserError | ModelNotFound | OutputExists | ValueError | FileNotFoundError)


def check_inputs(inputs: list[Path]) -> None:
    for path in inputs:
        if not path.exists():
            raise UserError(f"no such file or folder: {path}")


def check_teams(teams: Path | None) -> None:
    """The teams file exists and parses (its rules are checked again where they are used)."""
    if teams is None:
        return
    if not teams.is_file():
        raise UserError(f"no teams file at {teams} (--teams)")
    from pipeline.ingest import TeamRules

    TeamRules.load(teams)


def check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"{option} {value}: expected one of {', '.join(choices)}")


def check_device(device: str) -> None:
    if device not in DEVICES and not device.startswith("cuda:"):
        raise UserError(f"--device {device}: expected auto, cpu or cuda")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: torch sees no CUDA device here; use --device cpu (or auto)")


def resolve_model(model: Path | None) -> Path:
    """--model, or the shipped model wherever the command runs; refused unless it holds a saved model."""
    from pipeline.classify.rows import default_model

    directory = model if model is not None else default_model()
    if not (directory / "config.json").is_file():
        hint = "pass --model DIR" if model is None else "give a folder written by `seci train`"
        raise UserError(f"no model at {directory} (config.json missing): {hint}")
    return directory


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


ConfigOpt = Annotated[Path, typer.Option("--config", metavar="FILE", help="Ingestion settings.")]


def errors_path_for(out: Path) -> Path:
    """Where `seci ingest --out DIR/NAME.jsonl` writes its errors: DIR/NAME.errors.jsonl, beside its items."""
    stem = out.name.removesuffix(".jsonl") if out.name.endswith(".jsonl") else out.stem
    return out.with_name(f"{stem}.errors.jsonl")


@app.command()
@one_line_errors
def ingest(
    inputs: Inputs,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="Write items here as JSON Lines (default: stdout)."),
    ] = None,
    teams: TeamsOpt = None,
    config: ConfigOpt = Path("configs/ingest.yaml"),
) -> None:
    """Cut inputs into items and write them as JSON Lines. Inputs that cannot be read are listed in
    NAME.errors.jsonl beside --out NAME.jsonl (without --out, only counted)."""
    from contextlib import nullcontext

    from pipeline.ingest import IngestOptions, IngestSummary, TeamRules, ingest
    from pipeline.ingest.driver import find_files
    from pipeline.io import JsonlWriter
    from pipeline.items import InputError

    check_inputs(inputs)
    check_teams(teams)
    if out is not None and out.is_dir():
        raise UserError(f"--out {out} is a folder: give a file, e.g. {out / 'items.jsonl'}")
    options = IngestOptions.from_yaml(config) if config.exists() else IngestOptions()
    rules = TeamRules.load(teams) if teams else None
    summary = IngestSummary()
    total = sum(1 for _ in find_files(inputs))
    errors_path = errors_path_for(out) if out else None
    sink = JsonlWriter(out) if out else None
    with _progress() as progress, JsonlWriter(errors_path) if errors_path else nullcontext() as errors:
        task = progress.add_task("ingest", total=total, current="")
        for record in ingest(
            inputs, options, rules, summary, on_file=lambda p: progress.update(task, advance=1, current=p.name)
        ):
            if isinstance(record, InputError):
                if errors is not None:
                    errors.write(record.to_dict())
            elif sink is not None:
                sink.write(record.to_dict())
            else:
                sys.stdout.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
    if sink is not None:
        sink.close()
    _print_summary(summary, out, errors_path)


def _print_summary(summary: object, out: Path | None, errors_path: Path | None) -> None:
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
        err.print(f"errors: {errors_path}" if errors_path else "errors: listed only with --out (beside the items)")


@app.command()
@one_line_errors
def train(
    config: Annotated[
        Path, typer.Option("--config", metavar="FILE", help="Training config (YAML), e.g. configs/fast.yaml.")
    ],
    out: Annotated[Path | None, typer.Option("--out", metavar="DIR", help="Model directory to write.")] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Override a setting: section.key=value (YAML value), e.g. optim.seed=14.",
        ),
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
@one_line_errors
def evaluate(
    model: Annotated[Path, typer.Option("--model", metavar="DIR", help="Model directory.")],
    data: Annotated[
        list[Path],
        typer.Option(
            "--data",
            metavar="FILE",
            help="Labelled data: SECI JSONL/CSV/Parquet, or a metaphor CSV. Repeat it to score several files "
            "(e.g. data/seci/dev.jsonl, unseen groups, and data/seci/dev_in_domain.jsonl), each on its own.",
        ),
    ],
    task: Annotated[str, typer.Option("--task", metavar="TASK", help="seci or metaphor.")] = "seci",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the full report as JSON (a list of reports for several files).")
    ] = False,
    device: Annotated[str, typer.Option("--device", metavar="DEVICE", help="auto, cpu or cuda.")] = "auto",
    context: Annotated[
        list[Path] | None,
        typer.Option(
            "--context",
            metavar="FILE",
            help="A metaphor file whose sentences VUA sentences may read as preceding discourse, labels unused "
            "(repeatable; training reads VUA-18 val with its training files).",
        ),
    ] = None,
) -> None:
    """Score a model on labelled data, with baselines computed in the same run."""
    from pipeline.train.evaluate import evaluate as run_evaluation

    check_choice("--task", task, ("seci", "metaphor"))
    check_device(device)
    resolve_model(model)
    check_inputs([*data, *(context or ())])
    reports = [run_evaluation(model, path, task, device, context or ()) for path in data]
    if as_json:
        sys.stdout.write(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2) + "\n")
        return
    for report in reports:
        _print_evaluation(report)


def _print_evaluation(report: dict) -> None:
    if report["task"] == "seci":
        # Short headers, so that the table fits 80 columns: the modes by their initials, the legend below it.
        classes = list(report["model_metrics"]["per_class"])
        table = Table(
            title=f"{report['model']} on {report['data']}",
            caption=f"{', '.join(c[0].upper() for c in classes)}: F1 of {', '.join(classes)}",
        )
        for column in ("system", "accuracy", "macro-F1", "ECE", *(c[0].upper() for c in classes)):
            table.add_column(column, no_wrap=True, justify="left" if column == "system" else "right")
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
@one_line_errors
def suggest(
    model: Annotated[Path, typer.Option("--model", metavar="DIR", help="Model directory.")],
    pool: Annotated[
        list[Path], typer.Option("--pool", metavar="INPUT", help="Inputs to choose from (files or folders).")
    ],
    n: Annotated[int, typer.Option("-n", metavar="N", help="How many items to suggest.")] = 100,
    out: Annotated[Path | None, typer.Option("--out", metavar="FILE", help="JSONL file (default: stdout).")] = None,
    device: Annotated[str, typer.Option("--device", metavar="DEVICE", help="auto, cpu or cuda.")] = "auto",
) -> None:
    """The N items the model is least sure about, as JSONL ready to label."""
    from pipeline.train.suggest import suggest as run_suggest

    resolve_model(model)
    check_inputs(pool)
    check_device(device)

    rows = run_suggest(model, pool, n, device)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if out:
        out.write_text(lines, encoding="utf-8")
        err.print(f"{len(rows)} items: {out}")
    else:
        sys.stdout.write(lines)


@app.command()
@one_line_errors
def timeline(
    results: Annotated[Path, typer.Argument(metavar="RESULTS", help="A `seci batch` output folder.")],
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Report folder to write.")],
    freq: Annotated[str, typer.Option("--freq", metavar="FREQ", help="auto, D, W or M.")] = "auto",
    teams: TeamsOpt = None,
    max_teams: Annotated[int, typer.Option("--max-teams", metavar="N", help="Team sections in the report.")] = 50,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model", metavar="DIR", help="The model the results were scored with (its card gives the accuracy)."
        ),
    ] = None,
    no_text: Annotated[bool, typer.Option("--no-text", help="Leave the example excerpts out of the report.")] = False,
    metaphor: Annotated[
        bool, typer.Option("--metaphor", help="Show the metaphor rate (with the flag's measured precision).")
    ] = False,
    min_period_items: Annotated[
        int, typer.Option("--min-period-items", metavar="N", help="Periods with fewer items are greyed.")
    ] = 5,
) -> None:
    """Per-team knowledge-spiral timelines, ba and the HTML report (docs/report.md)."""
    from pipeline.report import build_timeline

    check_choice("--freq", freq, ("auto", "D", "W", "M"))
    if not results.is_dir():
        raise UserError(f"no results folder at {results}: give the --out folder of a `seci batch` run")
    if not any((results / name).is_file() for name in ("items.parquet", "items.jsonl")):
        raise UserError(
            f"{results} holds no items.parquet or items.jsonl: run `seci batch INPUT... --out {results}` "
            "(with --resume if it was interrupted)"
        )
    check_teams(teams)
    if model is not None:
        resolve_model(model)
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
            str(t.team),
            str(t.items),
            str(t.participants),
            str(t.turns_completed),
            coherence,
            t.stall_mode or "-",  # no stall
            t.dominant_mode or "-",
        )
    err.print(table)
    err.print(f"report: {report.index_html}")


# -- score and batch (the hot path: pipeline/classify/score.py, batch.py) ------------------------------

ModelOpt = Annotated[
    Path | None,
    typer.Option("--model", metavar="DIR", help="A saved seci model directory (default: the shipped seci-fast)."),
]
DeviceOpt = Annotated[str, typer.Option("--device", metavar="DEVICE", help="auto, cpu or cuda.")]
DtypeOpt = Annotated[
    str,
    typer.Option(
        "--dtype", metavar="DTYPE", help="auto (bf16 where native), float32, bfloat16, float16 or int8 (CPU)."
    ),
]


@app.command()
@one_line_errors
def score(
    path: Annotated[
        str, typer.Argument(metavar="PATH", help="A file, a folder, or - to read one text from standard input.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result object of INTERFACE.md.")] = False,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
) -> None:
    """Score one input: its SECI mode, probabilities and deliberate metaphors, per item and overall."""
    from pipeline.classify.rows import Scorer
    from pipeline.classify.score import MAX_STDIN_CHARS, ScoreError, score_path, score_text

    if path != "-":
        check_inputs([Path(path)])
    check_choice("--dtype", dtype, DTYPES)
    model_dir = resolve_model(model)
    check_device(device)
    # Bounded read: one character over the limit is enough for score_text to refuse the input.
    text = sys.stdin.read(MAX_STDIN_CHARS + 1) if path == "-" else None
    try:
        scorer = Scorer.load(model_dir, device=device, dtype=dtype)
        result = score_text(text, scorer) if text is not None else score_path(Path(path), scorer)
    except ScoreError as exc:
        raise fail(f"cannot score {path}: {exc}", 1) from None
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
    # Words are never broken: the labels keep their width; the id, the metaphors and the text wrap between words.
    for column in ("id", "mode", "p", "ba", "metaphor", "text"):
        fixed = column in ("mode", "p", "ba")
        items.add_column(
            column,
            no_wrap=fixed,
            min_width=8 if column == "metaphor" else None,
            ratio=None if fixed else 3 if column == "text" else 2,
            max_width=48 if column == "text" else None,
        )
    for row in data["items"]:
        flag = "-" if row["metaphor"] is None else "yes" if row["metaphor"] else "no"
        spans = ", ".join(f"{s['text']} ({s['score']:.2f})" for s in row["metaphor_spans"])
        text = row.get("text") or ""
        items.add_row(
            row["id"],
            row["mode"],
            f"{row['probabilities'][row['mode']]:.2f}",
            row["ba"],
            f"{flag}: {spans}" if spans else flag,
            text[:120] + ("..." if len(text) > 120 else ""),
        )
    out.print(items)
    for warning in data["warnings"]:
        err.print(f"[yellow]{warning}")


@app.command()
@one_line_errors
def batch(
    inputs: Inputs,
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Results folder (items, errors.jsonl, run.json).")],
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="parquet or jsonl.")] = "parquet",
    teams: TeamsOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="Skip items already scored in --out.")] = False,
    engine: Annotated[
        str, typer.Option("--engine", metavar="ENGINE", help="local, or ray (pip install 'seci[ray]').")
    ] = "local",
    device: DeviceOpt = "auto",
    model: ModelOpt = None,
    no_text: Annotated[bool, typer.Option("--no-text", help="Leave the item text out of the results.")] = False,
    dtype: DtypeOpt = "auto",
    metaphor: Annotated[
        str,
        typer.Option(
            "--metaphor",
            metavar="MODE",
            help="rules (spaCy deliberate-metaphor rules), tokens (model only) or off (modes only: no metaphor "
            "fields, about half the model's work on long items).",
        ),
    ] = "rules",
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", metavar="N", help="Items per chunk (one part file each).")
    ] = 1024,
    compile: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="torch.compile the model (~20 s to start), for GPUs; on CPU the default fused layers measured faster.",
        ),
    ] = False,
    ray_actors: Annotated[
        int | None, typer.Option("--ray-actors", metavar="N", help="Model replicas for --engine ray.")
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", metavar="ADDRESS", help="Ray cluster address (e.g. auto); default: local Ray."),
    ] = None,
    config: ConfigOpt = Path("configs/ingest.yaml"),
) -> None:
    """Score every item of an archive into --out, streaming; resumable after a crash with --resume."""
    from rich.progress import TimeRemainingColumn

    from pipeline.classify.batch import BatchOptions, BatchProgress, run_batch
    from pipeline.ingest import IngestOptions

    # Everything that can be refused is refused here, in seconds, before the model loads.
    check_inputs(inputs)
    check_choice("--format", fmt, ("parquet", "jsonl"))
    check_choice("--engine", engine, ("local", "ray"))
    check_choice("--metaphor", metaphor, ("rules", "tokens", "off"))
    check_choice("--dtype", dtype, DTYPES)
    if chunk_size < 1:
        raise UserError(f"--chunk-size {chunk_size}: must be at least 1")
    check_teams(teams)
    model_dir = resolve_model(model)
    check_device(device)
    options = IngestOptions.from_yaml(config) if config.exists() else IngestOptions()
    progress = Progress(
        TextColumn("[bold]batch"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files scored"),
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
            if state.files_total is not None and state.files_done < state.files_total:
                stats += f"  reading {state.files_done:,}/{state.files_total:,}"
            scored = state.files_done if state.files_scored is None else state.files_scored
            progress.update(task, total=state.files_total, completed=scored, stats=stats)

        try:
            batch_options = BatchOptions(
                model_dir=model_dir,
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
        except KeyboardInterrupt:
            run = _read_run_json(out)
            raise fail(
                f"interrupted: {run.get('items', 0):,} items saved in {out} (run.json: status interrupted); "
                "the same command with --resume scores the rest",
                130,
            ) from None
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
    if not data["rows"] and not data["skipped_by_resume"]:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(data["errors_by_reason"].items()))
        raise fail(
            f"no readable input: {data['inputs']} files found, none gave an item"
            + (f" ({reasons}; see {out / 'errors.jsonl'})" if reasons else ""),
            1,
        )


def _read_run_json(out: Path) -> dict[str, Any]:
    try:
        return json.loads((out / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


if __name__ == "__main__":
    app()
