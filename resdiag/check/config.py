"""The validated ``resdiag check`` configuration: frozen dataclasses built from the TOML.

docs/ci.md lists every key with its type and default. Validation is strict: an unknown key, a
wrong type, a bad value or a missing file is a ResdiagError naming the file and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resdiag.check.metrics import LIMITS, METRICS, PROBES, probe_of_limit
from resdiag.check.schema import Table, describe
from resdiag.check.tolerance import Tolerance, parse_tolerance
from resdiag.check.tomlfile import find_config, resdiag_section
from resdiag.errors import ResdiagError
from resdiag.zoo import ModelConfig

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")
_ARCH_KEYS = {"depth": int, "plain": bool, "shortcut": str, "block": str, "projection": str,
              "placement": str, "norm": str, "width": float, "init": str, "init_gain": float,
              "branch_gain": float}


@dataclass(frozen=True)
class RunSettings:
    """How the probes run; set at the top level, and per model to override."""

    probes: tuple[str, ...] = PROBES
    batches: int = 2  # grad-flow: mini-batches averaged over
    batch_size: int = 16  # grad-flow: mini-batch size
    rank_batch_size: int = 64  # rank: samples in its one forward pass (feature ranks need >= 2)
    mode: str = "train"  # "train" (BatchNorm uses batch statistics) or "eval"
    data: str = "synthetic"  # or "cifar10:PATH"


@dataclass(frozen=True)
class GateLimits:
    """The absolute gates of one model: the active ``(key, limit)`` pairs and the verdict gate."""

    limits: tuple[tuple[str, float], ...]
    require_healthy: bool = True


@dataclass(frozen=True)
class ModelSpec:
    name: str
    settings: RunSettings
    gates: GateLimits
    arch: ModelConfig | None = None  # a built-in model, or ...
    factory: str | None = None  # ... the user's "module:callable"
    input_shape: tuple[int, ...] | None = None  # user models: required
    num_classes: int | None = None  # user models: None takes it from the model's output
    loss: str = "cross_entropy"
    source: str = ""  # where the config defines it, for errors: "resdiag.toml: 'models[0]'"


@dataclass(frozen=True)
class CheckConfig:
    file: Path
    seed: int
    device: str
    models: tuple[ModelSpec, ...]
    tolerances: dict[str, Tolerance] = field(default_factory=dict)  # every metric, defaults filled in
    baseline_file: Path | None = None  # relative paths are relative to the config file's folder
    threads: int | None = None  # torch CPU threads for the run; None keeps torch's default
    deterministic: bool = False  # torch.use_deterministic_algorithms for the run (GPU: same bytes)


def load_config(path: Path | None, cwd: Path | None = None) -> CheckConfig:
    """Read ``path``, or the nearest ``pyproject.toml`` with ``[tool.resdiag]``, and validate it."""
    path = path if path is not None else find_config(cwd or Path.cwd())
    section, prefix = resdiag_section(path)
    return parse_config(section, prefix, path)


def parse_config(data: dict[str, Any], prefix: str, file: Path) -> CheckConfig:
    top = Table(data, prefix, file)
    seed = top.take("seed", int, 0)
    device = top.take("device", str, "cpu")
    if not _DEVICE.match(device):
        raise top.error("device", f"must be auto, cpu, cuda or cuda:N, got {device!r}")
    threads = top.take("threads", int, None)
    if threads is not None and threads < 1:
        raise top.error("threads", f"must be >= 1, got {threads}")
    deterministic = top.take("deterministic", bool, False)
    settings = _settings(top, RunSettings())
    gates = _gate_values(top.table("gates"))
    tolerances, baseline_file = _baseline(top.table("baseline"))
    tables = top.tables("models")
    top.finish()
    if not tables:
        raise ResdiagError(f"{file}: no models to check: add a [[{prefix}models]] table (docs/ci.md)")
    models = tuple(_model(t, settings, gates) for t in tables)
    seen: dict[str, str] = {}
    for spec, t in zip(models, tables, strict=True):
        if spec.name in seen:
            raise t.error("name", f"repeats the name {spec.name!r} of '{seen[spec.name]}'")
        seen[spec.name] = t.path.rstrip(".")
    return CheckConfig(file, seed, device, models, tolerances, baseline_file, threads, deterministic)


def _settings(t: Table, base: RunSettings) -> RunSettings:
    probes = t.take_list("probes", str, base.probes)
    if not probes or len(set(probes)) != len(probes) or any(p not in PROBES for p in probes):
        raise t.error("probes", f"must list some of {', '.join(PROBES)} (each once), got {list(probes)}")
    s = RunSettings(
        probes=tuple(p for p in PROBES if p in probes), batches=t.take("batches", int, base.batches),
        batch_size=t.take("batch_size", int, base.batch_size),
        rank_batch_size=t.take("rank_batch_size", int, base.rank_batch_size),
        mode=t.take("mode", str, base.mode), data=t.take("data", str, base.data))
    for key, low in (("batches", 1), ("batch_size", 1), ("rank_batch_size", 2)):
        if getattr(s, key) < low:
            raise t.error(key, f"must be >= {low}, got {getattr(s, key)}")
    if s.mode not in ("train", "eval"):
        raise t.error("mode", f"must be train or eval, got {s.mode!r}")
    if t.has("data"):
        from resdiag.data import parse_data

        try:
            parse_data(s.data)
        except ResdiagError as exc:
            raise t.error("data", f"is not usable: {exc}") from None
    return s


def _gate_values(t: Table) -> dict[str, float | None | bool]:
    """The keys a ``gates`` table sets: a limit is a number, or false to turn it off."""
    out: dict[str, float | None | bool] = {}
    for key in LIMITS:
        value = t.take(key, object, None)
        if value is False:
            out[key] = None
        elif value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise t.error(key, f"must be a number, or false to turn the gate off; got {describe(value)}")
            out[key] = t.check(key, value, float)
    healthy = t.take("require_healthy", bool, None)
    if healthy is not None:
        out["require_healthy"] = healthy
    t.finish()
    return out


def _limits(values: dict[str, Any], probes: tuple[str, ...]) -> GateLimits:
    merged = {key: limit.default for key, limit in LIMITS.items()} | values
    active = tuple((k, v) for k, v in merged.items()
                   if k in LIMITS and v is not None and probe_of_limit(k) in probes)
    return GateLimits(active, bool(merged.get("require_healthy", True)))


def _baseline(t: Table) -> tuple[dict[str, Tolerance], Path | None]:
    file = t.take("file", str, None)
    tol = t.table("tolerance")
    tolerances = {}
    for name, metric in METRICS.items():
        text = tol.take(name, str, metric.tolerance)
        try:
            tolerances[name] = parse_tolerance(text)
        except ValueError as exc:
            raise tol.error(name, f"is not a tolerance: {exc}") from None
    tol.finish()
    t.finish()
    return tolerances, (t.file.parent / file if file else None)


def _model(t: Table, base: RunSettings, gates: dict[str, Any]) -> ModelSpec:
    name = t.take("name", str)
    if not _NAME.match(name):
        raise t.error("name", f"must be letters, digits, '_' and '-', got {name!r}")
    settings = _settings(t, base)
    own = _gate_values(t.table("gates"))
    for key in own:
        if key in LIMITS and probe_of_limit(key) not in settings.probes:
            raise t.error(f"gates.{key}", f"needs probe {probe_of_limit(key)!r}, which this model does "
                          f"not run (probes = {list(settings.probes)})")
    limits = _limits(gates | own, settings.probes)
    if t.has("arch") == t.has("model"):
        raise ResdiagError(f"{_where(t)} needs exactly one of 'arch' (a built-in model) or 'model' "
                           "(module:callable)")
    if t.has("arch"):
        return ModelSpec(name, settings, limits, arch=_builtin(t), source=_where(t))
    return _user_model(t, name, settings, limits)


def _builtin(t: Table) -> ModelConfig:
    from resdiag.zoo import parse_shortcut, resolve

    arch = t.take("arch", str)
    options = {key: t.take(key, kind, None) for key, kind in _ARCH_KEYS.items()}
    options["input_shape"] = t.take_list("input_shape", int, None)
    options["num_classes"] = t.take("num_classes", int, None)
    t.finish()
    depth, plain = options.pop("depth"), bool(options.pop("plain"))
    shortcut, projection = options.pop("shortcut"), options.pop("projection")
    try:
        return resolve(arch, depth, plain, shortcut=parse_shortcut(shortcut) if shortcut else None,
                       projection=projection.upper() if projection else None, **options)
    except ResdiagError as exc:
        raise ResdiagError(f"{_where(t)}: {exc}") from None


def _user_model(t: Table, name: str, settings: RunSettings, limits: GateLimits) -> ModelSpec:
    factory = t.take("model", str)
    module, sep, attr = factory.partition(":")
    if not (module and sep and attr):
        raise t.error("model", f"must be package.module:callable, got {factory!r}")
    for key in _ARCH_KEYS:
        if t.has(key):
            raise t.error(key, f"applies to built-in models ('arch'), not to model = {factory!r}")
    shape = t.take_list("input_shape", int)
    if not shape or any(s < 1 for s in shape):
        raise t.error("input_shape", f"must be positive integers, got {list(shape)}")
    classes = t.take("num_classes", int, None)
    if classes is not None and classes < 2:
        raise t.error("num_classes", f"must be >= 2, got {classes}")
    loss = t.take("loss", str, "cross_entropy")
    if loss not in ("cross_entropy", "mse"):
        raise t.error("loss", f"must be cross_entropy or mse, got {describe(loss)}")
    t.finish()
    return ModelSpec(name, settings, limits, factory=factory, input_shape=shape, num_classes=classes,
                     loss=loss, source=_where(t))


def _where(t: Table) -> str:
    return f"{t.file}: '{t.path.rstrip('.')}'"
