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


if __name__ == "__main__":
    app()
