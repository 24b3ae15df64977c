"""Shared by the CLI tests: run ``resdiag`` in-process and capture what it printed."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

from resdiag.cli.app import main


def invoke_out(args: list[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``resdiag ARGS``."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def invoke(args: list[str]) -> tuple[int, str]:
    """(exit code, stderr) of ``resdiag ARGS``; stdout is swallowed."""
    code, _, err = invoke_out(args)
    return code, err
