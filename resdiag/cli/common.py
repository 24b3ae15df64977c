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
    sys.stderr.write(f"resdiag: error: {message}\n")


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except ResdiagError as exc:
        fail(str(exc))
        raise typer.Exit(EXIT_USAGE) from None


def console():
    from rich.console import Console

    return Console()


def failing(results) -> bool:
    """Whether ``--strict`` fails: any verdict other than "healthy" (``inconclusive`` included)."""
    return any(r.verdict.status != "healthy" for r in results)


def write_results(path, results, compare_schema: str, compare: bool) -> None:
    """The JSON of one result, or of several under a compare wrapper; written atomically."""
    from resdiag.results import atomic_write, dumps

    if path is None:
        return
    payload = results[0].to_dict() if not compare else {
        "schema": compare_schema, "schema_version": 1, "results": [r.to_dict() for r in results]}
    atomic_write(path, dumps(payload))
