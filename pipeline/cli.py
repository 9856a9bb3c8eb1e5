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
    for key in ("files", "files_read", "companions", "items", "duplicates", "errors", "seconds"):
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
) -> None:
    """Fine-tune the mode and metaphor heads; writes weights, config, calibration and a model card."""
    from pipeline.train.config import TrainConfig
    from pipeline.train.train import train as run_training

    cfg = TrainConfig.from_yaml(config)
    target = out or Path("models") / cfg.model.name
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
    data: Annotated[Path, typer.Option("--data", help="Labelled data: SECI JSONL/CSV/Parquet, or a metaphor CSV.")],
    task: Annotated[str, typer.Option("--task", help="seci or metaphor.")] = "seci",
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Score a model on labelled data, with baselines computed in the same run."""
    from pipeline.train.evaluate import evaluate as run_evaluation

    report = run_evaluation(model, data, task, device)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
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
) -> None:
    """Per-team knowledge-spiral timelines, ba and the HTML report."""
    from pipeline.report import build_timeline

    if freq not in ("auto", "D", "W", "M"):
        raise typer.BadParameter("--freq must be auto, D, W or M")
    report = build_timeline(results, out, freq=freq, teams=teams, max_teams=max_teams)
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


if __name__ == "__main__":
    app()
