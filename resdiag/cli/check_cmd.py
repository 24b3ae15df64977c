"""``resdiag check``: the CI gate. Parses options, makes one library call (``run_check``), renders.

Exit codes follow ruff and pytest: 0 every gate passed, 1 at least one gate failed, 2 a usage or
configuration error (one line on stderr). docs/ci.md documents the configuration.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from resdiag.cli.common import EXIT_PROBLEM, console, user_errors, user_prints_to_stderr
from resdiag.errors import ResdiagError

FORMATS = ("human", "json", "github")

ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", help="A resdiag.toml (keys at the top level) or a pyproject.toml ([tool.resdiag]). "
                           "Default: the nearest pyproject.toml with [tool.resdiag].")]
BaselineOpt = Annotated[Path | None, typer.Option(
    "--baseline", help="Compare every metric with this baseline JSON, within its tolerance "
                       "(default: baseline.file of the config, if set).")]
UpdateOpt = Annotated[bool, typer.Option(
    "--update-baseline", help="Write the baseline from this run instead of comparing with it.")]
FormatOpt = Annotated[str, typer.Option(
    "--format", help="human (a table) | json (the resdiag.check JSON on stdout) | github (::error "
                     "annotations, and a Markdown table appended to $GITHUB_STEP_SUMMARY).")]
JunitOpt = Annotated[Path | None, typer.Option(
    "--junitxml", help="Also write JUnit XML: one test case per gate.")]


def check(config: ConfigOpt = None, baseline: BaselineOpt = None, update_baseline: UpdateOpt = False,
          output_format: FormatOpt = "human", junitxml: JunitOpt = None) -> None:
    """Run the models and gates of the configuration; exit 1 when a gate fails (docs/ci.md)."""
    with user_errors():
        from resdiag.check.run_check import baseline_path, run_check
        from resdiag.check.config import load_config

        if output_format not in FORMATS:
            raise ResdiagError(f"unknown --format {output_format!r}: use {', '.join(FORMATS)}")
        cfg = load_config(config)
        path = baseline_path(cfg, baseline, update_baseline)
        summary = _summary_path(output_format)
        _check_paths(cfg, path, update_baseline, junitxml, summary)
        with user_prints_to_stderr():
            result = run_check(cfg, path, update_baseline, write=False)
        from resdiag.writes import write_all

        write_all(_outputs(result, junitxml, path if update_baseline else None, summary))
        _render(result, output_format, cfg.file)
        if update_baseline:
            sys.stderr.write(f"resdiag: wrote baseline {path} ({len(result.models)} models)\n")
    if not result.passed:
        raise typer.Exit(EXIT_PROBLEM)


def _summary_path(output_format: str) -> Path | None:
    summary = os.environ.get("GITHUB_STEP_SUMMARY") if output_format == "github" else None
    return Path(summary) if summary else None


def _check_paths(cfg, baseline: Path | None, update: bool, junitxml: Path | None,
                 summary: Path | None) -> None:
    """Every file check writes, checked before any model runs: writable, distinct, and none of them
    a file it reads (the config, the baseline it compares with, a model's checkpoint)."""
    from resdiag.paths import check_paths, check_suffix

    outputs = [("--junitxml", junitxml, (".xml",)), ("GITHUB_STEP_SUMMARY", summary, (), True)]
    inputs = [("--config", cfg.file)]
    if update:
        outputs.append(("--baseline", baseline, (".json",)))
    elif baseline is not None:
        check_suffix("--baseline", baseline, (".json",))
        inputs.append(("--baseline", baseline))
    check_paths(outputs, inputs)


def _outputs(result, junitxml: Path | None, baseline: Path | None, summary: Path | None) -> list:
    """Every file this check writes, rendered before any is written (they are written as a group)."""
    from resdiag.writes import Write

    writes = []
    if junitxml is not None:
        from resdiag.check.junit import junit_xml

        writes.append(Write(path=junitxml, data=junit_xml(result)))
    if baseline is not None:
        from resdiag.check.baseline import baseline_dict
        from resdiag.results import dumps

        writes.append(Write(path=baseline, data=dumps(baseline_dict(result))))
    if summary is not None:
        from resdiag.check.github import markdown

        writes.append(Write(path=summary, data=markdown(result), append=True))
    return writes


def _render(result, output_format: str, config_file: Path) -> None:
    for w in result.warnings:
        sys.stderr.write(f"resdiag: warning: {w}\n")
    if output_format == "json":
        sys.stdout.write(result.to_json())
    elif output_format == "github":
        from resdiag.check.github import annotations

        sys.stdout.write(annotations(result, _relative(config_file)))
    else:
        from resdiag.check.human import print_check

        print_check(console(), result)


def _relative(path: Path) -> Path:
    """The path from the current folder when it is below it: GitHub resolves annotations from there."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path
