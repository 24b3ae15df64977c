"""Baselines (schema "resdiag.baseline"): the metrics of a known-good run, to compare later runs with.

A baseline records the resdiag and torch versions, the device and each model's fingerprint (its
config or factory, parameter count and run settings). A difference there is a warning, not a failure:
the metrics, within their tolerances, decide.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resdiag.check.result import CheckResult, Gate, ModelRun, fmt
from resdiag.check.tolerance import Tolerance
from resdiag.errors import ResdiagError
from resdiag.results import atomic_write, decode, dumps, encode

BASELINE_SCHEMA = "resdiag.baseline"
BASELINE_VERSION = 1


@dataclass(frozen=True)
class Baseline:
    path: Path
    resdiag_version: str
    torch_version: str
    device: str
    seed: int
    threads: int | None
    models: dict[str, dict[str, Any]]  # name -> {"fingerprint": {...}, "metrics": {name: value}}


def baseline_dict(result: CheckResult) -> dict[str, Any]:
    return encode({
        "schema": BASELINE_SCHEMA, "schema_version": BASELINE_VERSION,
        "resdiag_version": result.resdiag_version, "torch_version": result.torch_version,
        "device": result.device, "seed": result.seed, "threads": result.threads,
        "models": {m.name: {"fingerprint": m.fingerprint, "metrics": m.metrics} for m in result.models},
    })


def write_baseline(path: Path, result: CheckResult) -> None:
    """Write atomically: a reader never sees half a baseline, and a failed write leaves the old one."""
    atomic_write(path, dumps(baseline_dict(result)))


def read_baseline(path: Path) -> Baseline:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResdiagError(f"baseline file not found: {path} (write it with --update-baseline)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResdiagError(f"cannot read baseline {path}: {exc}") from None
    if not isinstance(d, dict) or d.get("schema") != BASELINE_SCHEMA:
        raise ResdiagError(f"{path} is not a resdiag baseline (no \"schema\": \"{BASELINE_SCHEMA}\")")
    if d.get("schema_version") != BASELINE_VERSION:
        raise ResdiagError(f"{path}: baseline schema_version {d.get('schema_version')!r} is not "
                           f"{BASELINE_VERSION}, the one this resdiag reads: rewrite it with "
                           "--update-baseline")
    try:
        models = d["models"]
        ok = all(isinstance(m["fingerprint"], dict) and isinstance(m["metrics"], dict)
                 for m in models.values())
        models = {name: {**m, "metrics": _floats(decode(m["metrics"]), path, name)}
                  for name, m in models.items()}
        base = Baseline(path, str(d["resdiag_version"]), str(d["torch_version"]), str(d["device"]),
                        int(d["seed"]), d.get("threads"), models)
    except (KeyError, TypeError, AttributeError, ValueError):
        ok = False
    if not ok:
        raise ResdiagError(f"{path}: malformed baseline (docs/ci.md shows the format): "
                           "rewrite it with --update-baseline")
    return base


def _floats(metrics: dict, path: Path, model: str) -> dict:
    """The stored metrics with every number as a float; a number no float64 holds (a 400-digit
    integer) is refused by name instead of failing later in the comparison."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:
                raise ResdiagError(f"{path}: {model}.{key} = {str(value)[:12]}... ({len(str(value))} digits) "
                                   "is beyond float64: rewrite the baseline with --update-baseline") from None
        out[key] = value
    return out


def compare(run: ModelRun, base: Baseline, tolerances: dict[str, Tolerance]) -> list[Gate]:
    """One gate per metric: the new value within the metric's tolerance of the stored one."""
    stored = base.models.get(run.name)
    if stored is None:
        return [Gate(run.name, "baseline", "baseline", "missing", "in the baseline", False,
                     f"model {run.name!r} is not in the baseline {base.path}: add it with --update-baseline")]
    out = []
    for metric, value in run.metrics.items():
        old = stored["metrics"].get(metric)
        tol = tolerances[metric]
        if not isinstance(old, (int, float)) or isinstance(old, bool):
            out.append(Gate(run.name, f"baseline.{metric}", "baseline", value, "in the baseline", False,
                            f"{metric} is not in the baseline {base.path}: add it with --update-baseline"))
            continue
        ok = tol.allows(float(old), value)
        why = (f"{metric} = {fmt(value)}, baseline {fmt(float(old))} ± {tol.describe()}"
               + ("" if ok else f": outside the tolerance ({tol.text()})"))
        out.append(Gate(run.name, f"baseline.{metric}", "baseline", value,
                        f"{fmt(float(old))} ± {tol.describe()}", ok, why))
    return out


def warnings(result: CheckResult, base: Baseline) -> list[str]:
    """What differs between the run and the baseline besides the metrics: versions, device, models."""
    out = []
    then = (base.resdiag_version, base.torch_version, base.device, base.seed, base.threads)
    now = (result.resdiag_version, result.torch_version, result.device, result.seed, result.threads)
    if then != now:
        out.append(f"the baseline {base.path} was made with resdiag {then[0]}, torch {then[1]} on {then[2]} "
                   f"(seed {then[3]}, {then[4]} threads); this run is resdiag {now[0]}, torch {now[1]} on "
                   f"{now[2]} (seed {now[3]}, {now[4]} threads): small differences in the metrics are "
                   "expected")
    for run in result.models:
        stored = base.models.get(run.name)
        if stored is None:
            continue
        diffs = _diff(stored["fingerprint"], encode(run.fingerprint))
        if diffs:
            shown = "; ".join(diffs[:3]) + ("; ..." if len(diffs) > 3 else "")
            out.append(f"model {run.name!r} differs from its baseline: {shown}")
    extra = sorted(set(base.models) - {m.name for m in result.models})
    if extra:
        out.append(f"the baseline {base.path} has models the config does not check: {', '.join(extra)}")
    return out


def _diff(old: Any, new: Any, where: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in sorted(set(old) | set(new), key=str)
                for d in _diff(old.get(k), new.get(k), f"{where}.{k}" if where else str(k))]
    return [] if old == new else [f"{where} {json.dumps(old)} -> {json.dumps(new)}"]
