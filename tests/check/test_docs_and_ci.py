"""docs/ci.md and the project's own CI config stay true to the code."""

import re
import shlex
import sys
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


def test_the_projects_own_ci_runs_the_check():
    run = (ROOT / ".ci" / "run").read_text()
    assert "\n.venv/bin/resdiag check --config .ci/resdiag.toml\n" in run
    assert run.index("pytest -q") < run.index("resdiag check")
    cfg = load_config(ROOT / ".ci" / "resdiag.toml")
    assert cfg.baseline_file is not None
    base = read_baseline(cfg.baseline_file)
    assert set(base.models) == {m.name for m in cfg.models}
    assert sys.version_info >= (3, 10)
