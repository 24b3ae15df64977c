"""What every command shares: exit codes, the one-line error, the console, writing results.

No command module imports ``resdiag.cli.app``; the app imports them (docs/design.md).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import typer

from resdiag.errors import ResdiagError

EXIT_PROBLEM, EXIT_USAGE, EXIT_INTERRUPT = 1, 2, 130


def fail(message: str) -> None:
    """The one line of an error: control characters a path or a value brought in (a newline in a
    file name) are shown escaped, so the message stays one line."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    sys.stderr.write(f"resdiag: error: {shown}\n")


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except ResdiagError as exc:
        fail(str(exc))
        raise typer.Exit(EXIT_USAGE) from None


def user_prints_to_stderr():
    """While a command computes, what the user's model prints goes to stderr: stdout carries only
    what resdiag renders (a table, ``check --format json``), so it stays machine-readable."""
    return contextlib.redirect_stdout(sys.stderr)


def console():
    from rich.console import Console

    return Console()


def failing(results) -> bool:
    """Whether ``--strict`` fails: any verdict other than "healthy" (``inconclusive`` included)."""
    return any(r.verdict.status != "healthy" for r in results)


def check_outputs(json_out, plot, target) -> None:
    """Refuse --json and --plot paths that could not be written, that name one file, or that name
    the --checkpoint the command reads, before any work is done."""
    from resdiag.paths import check_paths
    from resdiag.report.plot import FORMATS

    check_paths([("--json", json_out, (".json",)), ("--plot", plot, tuple(FORMATS))],
                [("--checkpoint", target.checkpoint)])


def render(results, *, compare: bool, rows: int, json_out, plot, tables, compare_table, draw,
           compare_schema: str) -> None:
    """Print the tables of one result (``tables``) or of several side by side (``compare_table``),
    write the JSON and draw the figure (``draw``)."""
    from resdiag.report.table import print_all
    from resdiag.writes import one_group

    limit = rows or None
    print_all(console(), compare_table(results, limit) if compare else tables(results[0], limit))
    with one_group():  # both files, or neither (an error in either, or in drawing, writes none)
        write_results(json_out, results, compare_schema, compare)
        if plot:
            draw(results, plot)


def write_results(path, results, compare_schema: str, compare: bool) -> None:
    """The JSON of one result, or of several under a compare wrapper; written atomically."""
    from resdiag.results import dumps
    from resdiag.writes import write

    if path is None:
        return
    payload = results[0].to_dict() if not compare else {
        "schema": compare_schema, "schema_version": 1, "results": [r.to_dict() for r in results]}
    write(path, dumps(payload))
