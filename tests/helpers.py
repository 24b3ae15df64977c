"""Shared by the CLI tests: run ``resdiag`` in-process and capture what it printed."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

from resdiag.cli.app import main


def invoke(args: list[str]) -> tuple[int, str]:
    """(exit code, stderr) of ``resdiag ARGS``; stdout is swallowed."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(args)
        except SystemExit as exc:
            return exc.code, err.getvalue()
    return 0, err.getvalue()
