"""The resdiag command line: the app, every command registered here, and the entry point.

Each command lives in its own module (``*_cmd.py``), parses, makes one library call and renders;
this module imports them and registers them, and none of them imports it (docs/design.md).

Exit codes: 0 all is well; 1 a check found a problem (``--strict``);
2 a usage or input error (one line on stderr); 130 interrupted (Ctrl-C); 143 terminated (SIGTERM).
"""

from __future__ import annotations

import os
import sys

import typer

try:  # typer >= 0.23 ships its own copy of click
    from typer import _click as click
except ImportError:  # pragma: no cover - older typer depends on click
    import click

from resdiag.cli.check_cmd import check
from resdiag.cli.claims_cmd import claims
from resdiag.cli.common import EXIT_INTERRUPT, EXIT_PROBLEM, EXIT_USAGE, fail
from resdiag.cli.gradflow_cmd import grad_flow
from resdiag.cli.models_cmd import models
from resdiag.cli.process import EXIT_TERMINATED, Guard, exit_now, received, stray_threads
from resdiag.cli.rank_cmd import rank
from resdiag.cli.sweep_cmd import sweep
from resdiag.cli.train_cmd import train

__all__ = ["EXIT_INTERRUPT", "EXIT_PROBLEM", "EXIT_USAGE", "app", "main"]

app = typer.Typer(
    name="resdiag",
    help="Gradient-flow and rank-collapse diagnostics for deep residual and plain networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # no markdown parser at start-up: --help stays fast
)

# The commands, in the order `resdiag --help` lists them.
COMMANDS = (("models", models), ("grad-flow", grad_flow), ("rank", rank), ("train", train),
            ("sweep", sweep), ("check", check), ("claims", claims))
for _name, _command in COMMANDS:
    app.command(_name)(_command)

# typer >= 0.23 raises its own Exit/Abort; older typer re-exports click's.
_EXITS = tuple({typer.Exit, getattr(click.exceptions, "Exit", typer.Exit)})
_ABORTS = tuple({typer.Abort, getattr(click.exceptions, "Abort", typer.Abort), KeyboardInterrupt})


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line on stderr and exit 2 for usage errors, 130 for Ctrl-C, 143 for SIGTERM.

    An unexpected exception is a bug or an input resdiag did not foresee: it is reported in one
    line (exit 2) unless RESDIAG_DEBUG=1 is set, which shows the traceback. A closed stdout, SIGTERM
    and a user model's leftover threads are handled as ``resdiag.cli.process`` describes.
    """
    with Guard():
        code = _run(argv)
    if argv is None and stray_threads():  # the program itself, not a test calling main()
        sys.stderr.write(f"resdiag: warning: your model left {len(stray_threads())} thread(s) running; "
                         "exiting without waiting for them\n")
        exit_now(code)
    sys.exit(code)


def _run(argv: list[str] | None) -> int:
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="resdiag", standalone_mode=False)
        if code == EXIT_INTERRUPT and received:  # typer returns 130 for any interrupt
            code = EXIT_TERMINATED
    except click.exceptions.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:
            click.echo(exc.ctx.get_help())
            return 0
        hint = f" (see 'resdiag {exc.ctx.info_name} --help')" if exc.ctx and exc.ctx.parent else ""
        fail(f"{exc.format_message()}{hint}")
        code = EXIT_USAGE
    except click.exceptions.ClickException as exc:
        fail(exc.format_message())
        code = EXIT_USAGE
    except _EXITS as exc:  # typer turns Ctrl-C into Exit(130), the interrupt as its cause
        code = EXIT_TERMINATED if exc.exit_code == EXIT_INTERRUPT and received else exc.exit_code
    except _ABORTS:
        code = EXIT_TERMINATED if received else EXIT_INTERRUPT
    except Exception as exc:
        if os.environ.get("RESDIAG_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        fail(f"unexpected {type(exc).__name__}: {first} (RESDIAG_DEBUG=1 shows the traceback)")
        code = EXIT_USAGE
    if code == EXIT_INTERRUPT:
        sys.stderr.write("resdiag: interrupted\n")
    elif code == EXIT_TERMINATED:
        sys.stderr.write("resdiag: terminated\n")
    return code if isinstance(code, int) else 0
