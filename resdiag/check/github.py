"""``resdiag check --format github``: workflow-command annotations and a Markdown job summary.

``::error`` / ``::warning`` lines follow GitHub's workflow-command syntax (values are escaped: ``%``,
CR and LF in the message; also ``:`` and ``,`` in properties). The Markdown table is appended to the
file named by ``$GITHUB_STEP_SUMMARY``.
"""

from __future__ import annotations

from pathlib import Path

from resdiag.check.result import CheckResult, fmt


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def annotations(result: CheckResult, config_file: Path | None = None) -> str:
    """One ``::error`` line per failed gate and one ``::warning`` per warning, then a summary line."""
    where = f"file={_prop(str(config_file))}," if config_file is not None else ""
    lines = [f"::error {where}title={_prop(f'resdiag check: {g.id}')}::{_data(g.message)}"
             for g in result.failed]
    lines += [f"::warning title=resdiag check::{_data(w)}" for w in result.warnings]
    n, bad = len(result.gates), len(result.failed)
    lines.append(f"resdiag check: {n - bad} of {n} gates passed" + (f", {bad} failed" if bad else ""))
    return "\n".join(lines) + "\n"


def markdown(result: CheckResult) -> str:
    """A Markdown job summary: a status line and a table of every gate."""
    n, bad = len(result.gates), len(result.failed)
    head = f"✅ all {n} gates passed" if not bad else f"❌ {bad} of {n} gates failed"
    rows = ["| model | gate | value | limit | result |", "| --- | --- | ---: | --- | --- |"]
    rows += [f"| {_cell(g.model)} | {_cell(g.name)} | {_cell(fmt(g.value))} | {_cell(g.limit)} | "
             f"{'pass' if g.passed else '**FAIL**'} |" for g in result.gates]
    notes = [f"> warning: {w}" for w in result.warnings]
    return "\n".join([f"### resdiag check: {head}", "", *rows, "", *notes, ""]).rstrip("\n") + "\n\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def append_summary(path: Path, result: CheckResult) -> None:
    """Append the Markdown summary to ``path``: all of it, or (on a write error) nothing."""
    from resdiag.writes import Write, write_all

    write_all([Write(path=path, data=markdown(result), append=True)])
