"""The validated ``resdiag check`` configuration: frozen dataclasses built from the TOML.

docs/ci.md lists every key with its type, range and default. ``resdiag.check.schema`` checks each
key (pydantic); this module checks what spans keys (inherited settings, gate defaults, the zoo's own
checks, unique names) and builds the objects the runner reads. Every error is a ResdiagError naming
the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resdiag.check.metrics import LIMITS, METRICS, PROBES, probe_of_limit
from resdiag.check.schema import ArchModel, ConfigFile, Settings, UserModel, key_error, validate
from resdiag.check.tolerance import Tolerance, parse_tolerance
from resdiag.check.tomlfile import find_config, resdiag_section
from resdiag.errors import ResdiagError
from resdiag.run.spec_fields import ZOO_NAMES, zoo_config
from resdiag.zoo import ModelConfig

# The zoo's variant keys: what a built-in model may set beyond what every model may.
_ARCH_KEYS = tuple(k for k in ArchModel.model_fields if k not in UserModel.model_fields and k != "arch")


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
    input_shape: tuple[int, ...] | None = None  # user models: float inputs of this shape (or tokens)
    num_classes: int | None = None  # user models: None takes it from the model's output
    loss: str = "cross_entropy"
    source: str = ""  # where the config defines it, for errors: "resdiag.toml: models.tiny"
    tokens: int | None = None  # user models: int64 token ids, sequences of this length (or input_shape)
    vocab: int | None = None  # with tokens: ids in [0, vocab); None: from the model's input embedding
    blocks: str | None = None  # user models: regex (re.fullmatch) over module names naming the blocks


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
    raw = validate(data, prefix, file)

    def error(loc: tuple, what: str) -> ResdiagError:
        return key_error(file, prefix, loc, data, what)

    if not raw.models:
        raise ResdiagError(f"{file}: no models to check: add a [[{prefix}models]] table (docs/ci.md)")
    base = _settings(raw, RunSettings())
    models = tuple(_model(raw, i, base, error, f"{file}: {prefix}") for i in range(len(raw.models)))
    seen: dict[str, int] = {}
    for i, spec in enumerate(models):
        if spec.name in seen:
            raise ResdiagError(f"{file}: {prefix}models[{i}].name: repeats the name {spec.name!r} of "
                               f"{prefix}models[{seen[spec.name]}]")
        seen[spec.name] = i
    tolerances = {name: getattr(raw.baseline.tolerance, name) or parse_tolerance(m.tolerance)
                  for name, m in METRICS.items()}
    baseline_file = file.parent / raw.baseline.file if raw.baseline.file else None
    return CheckConfig(file, raw.seed, raw.device, models, tolerances, baseline_file, raw.threads,
                       raw.deterministic)


def _settings(t: Settings, base: RunSettings) -> RunSettings:
    """``base`` with the keys ``t`` sets; probes in the canonical order."""
    probes = base.probes if t.probes is None else tuple(p for p in PROBES if p in t.probes)
    given = {k: getattr(t, k) for k in ("batches", "batch_size", "rank_batch_size", "mode", "data")}
    return RunSettings(probes=probes, **{k: base.__dict__[k] if v is None else v for k, v in given.items()})


def _model(raw: ConfigFile, i: int, base: RunSettings, error, where: str) -> ModelSpec:
    entry = raw.models[i]
    loc = ("models", i)
    settings = _settings(entry, base)
    gates = _limits(raw.gates, entry.gates, settings.probes, loc, error)
    source = f"{where}models.{entry.name}"
    if isinstance(entry, UserModel):
        return ModelSpec(entry.name, settings, gates, factory=entry.model,
                         input_shape=tuple(entry.input_shape) if entry.input_shape else None,
                         tokens=entry.tokens, vocab=entry.vocab, blocks=entry.blocks,
                         num_classes=entry.num_classes, loss=entry.loss, source=source)
    return ModelSpec(entry.name, settings, gates, arch=_builtin(entry, loc, error), source=source)


def _limits(top, own, probes: tuple[str, ...], loc: tuple, error) -> GateLimits:
    """Defaults, then the top-level gates, then the model's; ``false`` turns a gate off."""
    mine = own.model_fields_set - {"require_healthy"}
    for k in mine:
        if probe_of_limit(k) not in probes:
            raise error((*loc, "gates", k), f"needs probe {probe_of_limit(k)!r}, which this model does "
                        f"not run (probes = {list(probes)})")
    merged: dict[str, float | None] = {}
    for k, limit in LIMITS.items():
        value = getattr(own, k) if k in mine else getattr(top, k) if k in top.model_fields_set \
            else limit.default
        merged[k] = None if value is False else value
    for low, high in _PAIRS:
        if merged[low] is not None and merged[high] is not None and merged[low] > merged[high]:
            at = (*loc, "gates", low) if low in mine else ("gates", low) if low in top.model_fields_set \
                else (*loc, "gates", high) if high in mine else ("gates", high)
            raise error(at, f"{low} = {merged[low]:g} is above {high} = {merged[high]:g}: "
                        "no value could pass both gates")
    active = tuple((k, v) for k, v in merged.items() if v is not None and probe_of_limit(k) in probes)
    healthy = own.require_healthy if own.require_healthy is not None else top.require_healthy
    return GateLimits(active, True if healthy is None else healthy)


# (min_KEY, max_KEY) pairs over the same metric.
_PAIRS = tuple((lo, hi) for lo in LIMITS for hi in LIMITS
               if LIMITS[lo].bound == "min" and LIMITS[hi].bound == "max"
               and LIMITS[lo].metric == LIMITS[hi].metric)


def _builtin(m: ArchModel, loc: tuple, error) -> ModelConfig:
    fields = {k: getattr(m, k) for k in ("init", "num_classes")}
    try:
        return zoo_config(m.arch, {k: getattr(m, k) for k in ZOO_NAMES},
                          input_shape=tuple(m.input_shape) if m.input_shape else None, **fields)
    except ResdiagError as exc:
        raise error(loc, str(exc)) from None
