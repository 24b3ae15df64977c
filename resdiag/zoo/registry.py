"""Named architectures: families (a name plus a depth) and presets, both pure data.

``resolve`` turns the CLI's ``--arch/--depth/--plain/...`` into one validated config, e.g.
``resnet110``, ``plain56``, ``preact_resnet164``, ``mlp`` with ``--depth 1000 --plain``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

from resdiag.errors import ResdiagError
from resdiag.zoo.config import MLPConfig, ModelConfig, ResNetConfig, TransformerConfig, validate


@dataclass(frozen=True)
class Family:
    name: str
    make: Callable[[int], ModelConfig]
    default_depth: int
    depths: str  # which depths are valid, for humans
    doc: str


FAMILIES: dict[str, Family] = {}
PRESETS: dict[str, ModelConfig] = {}


def register_family(family: Family) -> Family:
    if family.name in FAMILIES:
        raise ValueError(f"architecture family {family.name!r} is already registered")
    FAMILIES[family.name] = family
    return family


def register(name: str, cfg: ModelConfig) -> ModelConfig:
    if name in PRESETS:
        raise ValueError(f"architecture {name!r} is already registered")
    PRESETS[name] = cfg
    return cfg


def _block_for(depth: int) -> str:
    # He et al. 2016 build ResNet-164 and -1001 from bottlenecks; 164 is also 6n+2, so name it.
    if depth in (164, 1001):
        return "bottleneck"
    if (depth - 2) % 6 and not (depth - 2) % 9:
        return "bottleneck"
    return "basic"


def _resnet(placement: str, plain: bool) -> Callable[[int], ModelConfig]:
    return lambda d: ResNetConfig(depth=d, block=_block_for(d), plain=plain, placement=placement)


_PLACEMENT_PREFIX = {
    "post": "",
    "bn_after_add": "bn_after_add_",
    "relu_before_add": "relu_before_add_",
    "relu_preact": "relu_preact_",
    "preact": "preact_",
}
_PLACEMENT_DOC = {
    "post": "original post-activation",
    "bn_after_add": "BN after addition",
    "relu_before_add": "ReLU before addition",
    "relu_preact": "ReLU-only pre-activation",
    "preact": "full pre-activation",
}
for _placement, _prefix in _PLACEMENT_PREFIX.items():
    for _plain in (False, True):
        _base = "plain" if _plain else "resnet"
        register_family(
            Family(
                f"{_prefix}{_base}",
                _resnet(_placement, _plain),
                56,
                "6n+2 (basic blocks) or 9n+2 (bottlenecks; 164 and 1001 are bottlenecks)",
                f"CIFAR {'plain net' if _plain else 'ResNet'}, {_PLACEMENT_DOC[_placement]}",
            )
        )
register_family(
    Family("mlp", lambda d: MLPConfig(depth=d), 32, ">= 1 blocks", "residual MLP, one linear per block")
)
register_family(
    Family("plain_mlp", lambda d: MLPConfig(depth=d, plain=True), 32, ">= 1 blocks", "plain MLP")
)

for _placement, _prefix in (("preln", ""), ("postln", "postln_")):
    for _plain in (False, True):
        _what = f"{_placement[:-2]}-LN transformer encoder{', no residual sums' if _plain else ''}"
        register_family(Family(
            f"{_prefix}{'plain_' if _plain else ''}transformer",
            lambda d, p=_placement, q=_plain: TransformerConfig(depth=d, placement=p, plain=q),
            6, ">= 1 layers", f"{_what} (d_model 64, 4 heads; --placement preln | postln)",
        ))

# The depths of He et al. 2015 (Table 6) and 2016 (Tables 1-3), each with its plain twin.
for _d in (20, 32, 44, 56, 110, 164, 1001, 1202):
    register(f"resnet{_d}", FAMILIES["resnet"].make(_d))
    register(f"plain{_d}", FAMILIES["plain"].make(_d))
for _d in (110, 164, 1001):
    register(f"preact_resnet{_d}", FAMILIES["preact_resnet"].make(_d))

_NAME_DEPTH = re.compile(r"^([a-z_]+?)(\d+)$")
# Options a family does not take, refused with a one-line error rather than ignored.
_NOT_FOR = {
    ResNetConfig: ("a ResNet", ("branch_gain",)),
    MLPConfig: ("an MLP", ("block", "projection", "placement", "init")),
    TransformerConfig: ("a transformer", ("block", "projection", "init", "branch_gain", "norm")),
}


def resolve(arch: str | None = None, depth: int | None = None, plain: bool = False, **options) -> ModelConfig:
    """The validated config for an architecture name, a depth and variant options.

    ``options`` are config fields (``shortcut``, ``norm``, ``width``, ``placement`` ...); ``None``
    means "keep the family's default".
    """
    cfg = _lookup((arch or "resnet").strip().lower(), depth)
    if plain:
        cfg = replace(cfg, plain=True)
    given = {k: v for k, v in options.items() if v is not None}
    kind, not_here = _NOT_FOR[type(cfg)]
    for key in given:
        if key in not_here:
            raise ResdiagError(f"--{key.replace('_', '-')} does not apply to {kind} ({cfg.name})")
    unknown = set(given) - {f.name for f in fields(cfg)}
    if unknown:
        raise ValueError(f"unknown config fields {sorted(unknown)}")
    if isinstance(cfg, (MLPConfig, TransformerConfig)) and "width" in given:
        width = given["width"]
        if not float(width).is_integer():
            raise ResdiagError(f"{kind}'s --width is a number of units, got {width:g}")
        given["width"] = int(width)
    return validate(replace(cfg, **given))


def _lookup(name: str, depth: int | None) -> ModelConfig:
    if name in PRESETS:
        cfg = PRESETS[name]
        if depth is not None and depth != cfg.depth:
            raise ResdiagError(f"--arch {name} has depth {cfg.depth}, which conflicts with --depth {depth}")
        return cfg
    match = _NAME_DEPTH.match(name)
    if match and match.group(1) in FAMILIES:
        named = int(match.group(2))
        if depth is not None and depth != named:
            raise ResdiagError(f"--arch {name} has depth {named}, which conflicts with --depth {depth}")
        return FAMILIES[match.group(1)].make(named)
    if name in FAMILIES:
        family = FAMILIES[name]
        return family.make(family.default_depth if depth is None else depth)
    close = difflib.get_close_matches(name, [*FAMILIES, *PRESETS], n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ResdiagError(f"unknown architecture {name!r}: {hint}'resdiag models' lists them")
