"""docs/ci.md and the project's own CI config stay true to the code."""

import re
import shlex
import subprocess
from pathlib import Path

import typer

from resdiag.check.baseline import read_baseline
from resdiag.check.config import _ARCH_KEYS, load_config, parse_config
from resdiag.check.metrics import LIMITS, METRICS
from resdiag.check.tomlfile import tomllib
from resdiag.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "ci.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, flags=re.S)


def test_the_toml_example_is_a_valid_config():
    (text,) = blocks("toml")
    doc = tomllib.loads(text)
    cfg = parse_config(doc["tool"]["resdiag"], "tool.resdiag.", Path("pyproject.toml"))
    assert [m.name for m in cfg.models] == ["resnet20", "mlp", "mine"]


def test_every_key_is_documented_and_the_defaults_match():
    keys = set(re.findall(r"^\| `([a-z0-9_]+)` \|", DOC, flags=re.M))
    top = {"seed", "device", "threads", "deterministic", "probes", "batches", "batch_size",
           "rank_batch_size", "mode", "data", "gates", "baseline", "models", "name", "arch", "model",
           "input_shape", "num_classes", "loss", "file", "tolerance", "require_healthy"}
    assert top | set(_ARCH_KEYS) | set(LIMITS) | set(METRICS) <= keys
    for key, limit in LIMITS.items():
        (default,) = re.findall(rf"^\| `{key}` \| number or `false` \| ([^|]+) \|", DOC, flags=re.M)
        expected = "off" if limit.default is None else limit.default
        assert (default.strip() if expected == "off" else float(default.strip(" `"))) == expected, key
    for name, metric in METRICS.items():
        assert re.search(rf"^\| `{name}` \| {re.escape(metric.probe)} \| .* \| `{metric.tolerance}` \|$",
                         DOC, flags=re.M), name


def test_the_workflow_uses_only_options_that_exist():
    (workflow,) = blocks("yaml")
    command = typer.main.get_command(app)
    lines = [line.split("run:", 1)[-1].strip() for line in workflow.splitlines()
             if re.search(r"(run: |^\s+)resdiag ", line)]
    assert lines, "no resdiag command in the workflow"
    for line in lines + re.findall(r"`(resdiag check(?: [^`]*)?)`", DOC):
        words = shlex.split(line)
        assert words[:2] == ["resdiag", "check"], line
        opts = {o for p in command.commands["check"].params for o in p.opts}
        assert {w for w in words if w.startswith("-")} <= opts, line


STUB = """#!/usr/bin/env bash
printf '%q ' "$0" "$@" >> "$CI_LOG"; echo >> "$CI_LOG"
if [ "$1 $2" = "-m venv" ]; then
    mkdir -p "$3/bin"
    for tool in pip python resdiag; do cp "$0" "$3/bin/$tool"; done
fi
[ "$*" != "$CI_FAIL" ]
"""


def run_ci(tmp_path, fail: str = "") -> tuple[int, list[list[str]]]:
    """Run .ci/run in a copy of the repository's layout, with python3 and everything it installs
    replaced by stubs that log their command line; ``fail`` names arguments whose stub exits 1."""
    repo, bin_ = tmp_path / "repo", tmp_path / "bin"
    (repo / ".ci").mkdir(parents=True)
    bin_.mkdir()
    (repo / ".ci" / "run").write_text((ROOT / ".ci" / "run").read_text())
    (bin_ / "python3").write_text(STUB)
    (bin_ / "python3").chmod(0o755)
    log = tmp_path / "log"
    log.touch()
    env = {"PATH": f"{bin_}:/usr/bin:/bin", "CI_LOG": str(log), "CI_FAIL": fail}
    proc = subprocess.run(["bash", str(repo / ".ci" / "run")], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    calls = [shlex.split(line) for line in log.read_text().splitlines()]
    # python3 is found on PATH (logged as the stub's full path); the rest are run as .venv/bin/X.
    return proc.returncode, [[c[0].removeprefix(f"{bin_}/"), *c[1:]] for c in calls]


def readme_test_command() -> list[list[str]]:
    """The README's quickstart test command, split at ``&&`` into its commands."""
    readme = (ROOT / "README.md").read_text()
    (line,) = [ln for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
               for ln in block.splitlines() if "-m pytest" in ln and not ln.startswith("#")]
    return [shlex.split(part) for part in line.split("&&")]


def test_the_projects_own_ci_runs_the_readme_tests_then_the_check(tmp_path):
    code, calls = run_ci(tmp_path)
    assert code == 0
    readme = readme_test_command()
    assert readme[-1][1:] == ["-m", "pytest", "-q"]
    assert calls == [["python3", *readme[0][1:]], *readme[1:],
                     [".venv/bin/resdiag", "check", "--config", ".ci/resdiag.toml"]]


def test_the_projects_own_ci_stops_at_a_failing_test_run(tmp_path):
    code, calls = run_ci(tmp_path, fail="-m pytest -q")
    assert code != 0
    assert calls[-1] == [".venv/bin/python", "-m", "pytest", "-q"]  # the check never ran


def test_the_ci_config_has_a_baseline_for_every_model():
    cfg = load_config(ROOT / ".ci" / "resdiag.toml")
    assert cfg.baseline_file is not None
    base = read_baseline(cfg.baseline_file)
    assert set(base.models) == {m.name for m in cfg.models}
