"""Frozen configs for every network resdiag builds, and the parsing of their short syntax.

Architectures are data (docs/design.md, "Layers"): a variant is a field here, never an
``if`` scattered through ``forward``. Nothing in this module imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from resdiag.errors import ResdiagError

SHORTCUT_KINDS = ("identity", "scale", "gate", "shortcut_gate", "conv", "dropout")
PLACEMENTS = ("post", "bn_after_add", "relu_before_add", "relu_preact", "preact")
NORMS = ("batch", "none")
BLOCKS = ("basic", "bottleneck")
PROJECTIONS = ("A", "B")
INITS = ("fan_out", "fan_in")


@dataclass(frozen=True)
class Shortcut:
    """How the shortcut is combined with the residual branch F (He et al. 2016, Fig. 2, Table 1).

    identity        out = x + F(x)
    scale           out = lam * x + f_scale * F(x)                    (constant scaling)
    gate            g = sigmoid(conv1x1(x) + b_g); out = (1-g) * x + g * F(x)  (exclusive gating)
    shortcut_gate   g as above; out = (1-g) * x + F(x)                (shortcut-only gating)
    conv            out = conv1x1(x) + F(x) on every block            (1x1 conv shortcut)
    dropout         out = m * x + F(x), m ~ Bernoulli(1-p), no rescaling (dropout shortcut)
    """

    kind: str = "identity"
    lam: float = 1.0  # scale on the shortcut ("scale")
    f_scale: float = 1.0  # scale on F ("scale")
    gate_bias: float = -6.0  # initial b_g of the gate; He et al. 2016 report b_g = -6 as best
    p: float = 0.5  # drop probability ("dropout")

    def describe(self) -> str:
        if self.kind == "scale":
            return f"scale:{self.lam:g},{self.f_scale:g}"
        if self.kind in ("gate", "shortcut_gate"):
            return f"{self.kind}:{self.gate_bias:g}"
        if self.kind == "dropout":
            return f"dropout:{self.p:g}"
        return self.kind


def parse_shortcut(text: str) -> Shortcut:
    """Parse the ``--shortcut`` syntax: ``identity``, ``scale:LAM[,F_SCALE]``, ``gate[:B_G]``,
    ``shortcut_gate[:B_G]``, ``conv``, ``dropout[:P]``."""
    kind, _, arg = text.strip().partition(":")
    kind = kind.strip().lower().replace("-", "_")
    if kind not in SHORTCUT_KINDS:
        raise ResdiagError(
            f"unknown shortcut {text!r}: use one of identity, scale:LAM[,F_SCALE], gate[:B_G], "
            "shortcut_gate[:B_G], conv, dropout[:P]"
        )
    nums = _floats(arg, text) if arg else []
    arity = {"identity": 0, "conv": 0, "scale": 2, "gate": 1, "shortcut_gate": 1, "dropout": 1}
    if len(nums) > arity[kind] or (kind == "scale" and not nums):
        raise ResdiagError(f"malformed shortcut {text!r}: 'resdiag models' shows the syntax")
    if kind == "scale":
        return Shortcut("scale", lam=nums[0], f_scale=nums[1] if len(nums) > 1 else 1.0)
    if kind in ("gate", "shortcut_gate"):
        return Shortcut(kind, gate_bias=nums[0] if nums else -6.0)
    if kind == "dropout":
        p = nums[0] if nums else 0.5
        if not 0.0 <= p < 1.0:
            raise ResdiagError(f"dropout probability must be in [0, 1), got {p:g}")
        return Shortcut("dropout", p=p)
    return Shortcut(kind)


def _floats(arg: str, text: str) -> list[float]:
    try:
        values = [float(v) for v in arg.split(",")]
    except ValueError:
        raise ResdiagError(f"malformed shortcut {text!r}: the parameters must be numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise ResdiagError(f"malformed shortcut {text!r}: the parameters must be finite")
    return values


@dataclass(frozen=True)
class ResNetConfig:
    """A CIFAR ResNet (He et al. 2015, section 4.2) or its plain twin, and every variant."""

    depth: int = 56  # 6n+2 with basic blocks, 9n+2 with bottlenecks (He et al. 2015, 2016)
    block: str = "basic"  # "basic" (two 3x3) or "bottleneck" (1x1, 3x3, 1x1, expansion 4)
    plain: bool = False  # the same layers without any shortcut
    shortcut: Shortcut = field(default_factory=Shortcut)
    projection: str = "A"  # where the shape changes: A zero-pads (paper's CIFAR default), B 1x1 conv
    placement: str = "post"  # activation placement, He et al. 2016 Table 2 / Fig. 4
    norm: str = "batch"  # "batch" or "none"
    width: float = 1.0  # multiplier on the {16, 32, 64} filters
    num_classes: int = 10
    input_shape: tuple[int, int, int] = (3, 32, 32)
    init: str = "fan_out"  # He init over fan_out, as torchvision and fb.resnet.torch do
    init_gain: float = 1.0  # multiplies every conv/linear weight after init (e.g. 10 for a bad init)

    family = "resnet"

    @property
    def blocks_per_stage(self) -> int:
        return (self.depth - 2) // (6 if self.block == "basic" else 9)

    @property
    def name(self) -> str:
        prefix = {"post": "", "preact": "preact_"}.get(self.placement, f"{self.placement}_")
        base = "plain" if self.plain else "resnet"
        return f"{prefix}{base}{self.depth}"


@dataclass(frozen=True)
class MLPConfig:
    """A residual MLP x_{l+1} = x_l + W_l relu(norm(x_l)) of any depth, or its plain twin."""

    depth: int = 32  # number of blocks, one linear layer each
    width: int = 128
    plain: bool = False
    shortcut: Shortcut = field(default_factory=Shortcut)  # identity or scale only
    norm: str = "none"  # "none" is the pure form of He et al. 2016's equations; "batch" adds BatchNorm1d
    num_classes: int = 10
    input_shape: tuple[int, ...] = (3, 32, 32)  # flattened on entry
    # Std of each branch weight is branch_gain * sqrt(2 / width) (He init times a gain). None picks
    # 1 for plain nets and 1/sqrt(depth) for residual ones, so the forward signal of a deep residual
    # MLP stays finite (variance grows by (1 + 1/depth) per block; cf. Fixup, Zhang et al. 2019).
    branch_gain: float | None = None
    init_gain: float = 1.0

    family = "mlp"

    @property
    def name(self) -> str:
        return f"{'plain_' if self.plain else ''}mlp{self.depth}"

    @property
    def resolved_branch_gain(self) -> float:
        if self.branch_gain is not None:
            return self.branch_gain
        return 1.0 if self.plain else 1.0 / math.sqrt(self.depth)


TRANSFORMER_PLACEMENTS = ("preln", "postln")


@dataclass(frozen=True)
class TransformerConfig:
    """A transformer encoder classifier (resdiag/zoo/transformer.py) or its residual-free twin."""

    depth: int = 6  # number of layers (attention + feed-forward each)
    width: int = 64  # d_model; small enough for a CPU at depth 48
    heads: int = 4  # attention heads; width must be a multiple
    mlp_ratio: int = 4  # feed-forward hidden units = mlp_ratio * width (Vaswani et al. 2017: 4)
    placement: str = "preln"  # "preln" (Xiong et al. 2020) or "postln" (Vaswani et al. 2017)
    plain: bool = False  # the same layers without the residual sums
    shortcut: Shortcut = field(default_factory=Shortcut)  # identity only; kept so twin() is one rule
    vocab_size: int = 256  # token ids in [0, vocab_size)
    num_classes: int = 10
    input_shape: tuple[int, ...] = (32,)  # (sequence length,): token ids, or floats mapped to ids
    init_gain: float = 1.0  # multiplies every linear and embedding weight after init

    family = "transformer"
    input_kind = "tokens"  # int64 ids (B, T); the zoo's float batches are mapped to ids

    @property
    def name(self) -> str:
        prefix = "postln_" if self.placement == "postln" else ""
        return f"{prefix}{'plain_' if self.plain else ''}transformer{self.depth}"


ModelConfig = ResNetConfig | MLPConfig | TransformerConfig


def nearest_depths(depth: int, block: str, count: int = 2) -> list[int]:
    """The valid depths nearest to ``depth`` for a block kind (6n+2 basic, 9n+2 bottleneck)."""
    step = 6 if block == "basic" else 9
    lower = max(1, (depth - 2) // step) * step + 2
    candidates = sorted({lower, lower + step, max(step + 2, lower - step)}, key=lambda d: abs(d - depth))
    return sorted(d for d in candidates[:count] if d != depth)


def validate(cfg: ModelConfig) -> ModelConfig:
    """Check a config and return it; raise ResdiagError naming the fix for any invalid field."""
    if isinstance(cfg, MLPConfig):
        return _validate_mlp(cfg)
    if isinstance(cfg, TransformerConfig):
        return _validate_transformer(cfg)
    _check_choice("block", cfg.block, BLOCKS)
    _check_choice("projection", cfg.projection, PROJECTIONS)
    _check_choice("placement", cfg.placement, PLACEMENTS)
    _check_choice("norm", cfg.norm, NORMS)
    _check_choice("init", cfg.init, INITS)
    step = 6 if cfg.block == "basic" else 9
    if cfg.depth < step + 2 or (cfg.depth - 2) % step:
        near = " or ".join(str(d) for d in nearest_depths(cfg.depth, cfg.block))
        form = "6n+2" if cfg.block == "basic" else "9n+2"
        raise ResdiagError(
            f"depth {cfg.depth} is not valid for a {cfg.block}-block ResNet (depth = {form}, n >= 1): "
            f"try {near}"
        )
    if cfg.plain and cfg.shortcut.kind != "identity":
        raise ResdiagError(f"--plain has no shortcut, so --shortcut {cfg.shortcut.describe()} cannot apply")
    _check_common(cfg.width, cfg.num_classes, cfg.input_shape, cfg.init_gain)
    if len(cfg.input_shape) != 3:
        raise ResdiagError(f"a CIFAR ResNet takes input shape C,H,W; got {_shape(cfg.input_shape)}")
    if round(16 * cfg.width) < 1:
        raise ResdiagError(f"width {cfg.width:g} leaves the first stage with no filters: use >= 0.04")
    return cfg


def _validate_mlp(cfg: MLPConfig) -> MLPConfig:
    _check_choice("norm", cfg.norm, NORMS)
    if cfg.depth < 1:
        raise ResdiagError(f"an MLP needs depth >= 1 (blocks), got {cfg.depth}")
    if not float(cfg.width).is_integer() or cfg.width < 1:
        raise ResdiagError(f"an MLP's width is a number of units >= 1, got {cfg.width}")
    if cfg.shortcut.kind not in ("identity", "scale"):
        raise ResdiagError(
            f"an MLP takes --shortcut identity or scale:LAM[,F_SCALE], not {cfg.shortcut.describe()}"
        )
    if cfg.plain and cfg.shortcut.kind != "identity":
        raise ResdiagError(f"--plain has no shortcut, so --shortcut {cfg.shortcut.describe()} cannot apply")
    if cfg.branch_gain is not None and not (math.isfinite(cfg.branch_gain) and cfg.branch_gain >= 0):
        raise ResdiagError(f"branch gain must be a finite number >= 0, got {cfg.branch_gain}")
    _check_common(1.0, cfg.num_classes, cfg.input_shape, cfg.init_gain)
    return cfg


def _validate_transformer(cfg: TransformerConfig) -> TransformerConfig:
    _check_choice("placement", cfg.placement, TRANSFORMER_PLACEMENTS)
    if cfg.depth < 1:
        raise ResdiagError(f"a transformer needs depth >= 1 (layers), got {cfg.depth}")
    if cfg.shortcut.kind != "identity":
        raise ResdiagError(f"a transformer's residual sums are identities; --shortcut "
                           f"{cfg.shortcut.describe()} does not apply")
    if cfg.heads < 1 or not float(cfg.width).is_integer() or cfg.width < 2 or cfg.width % (2 * cfg.heads):
        raise ResdiagError(f"a transformer's --width (d_model) must be an even multiple of its {cfg.heads} "
                           f"heads, got {cfg.width}")
    if cfg.mlp_ratio < 1 or cfg.vocab_size < 2:
        raise ResdiagError(f"mlp_ratio must be >= 1 and vocab_size >= 2, got {cfg.mlp_ratio}, "
                           f"{cfg.vocab_size}")
    _check_common(1.0, cfg.num_classes, cfg.input_shape, cfg.init_gain)
    if len(cfg.input_shape) != 1:
        raise ResdiagError(f"a transformer takes input shape SEQ_LEN (token ids); got "
                           f"{_shape(cfg.input_shape)}")
    return cfg


def _check_common(width: float, num_classes: int, shape: tuple[int, ...], gain: float) -> None:
    if not (math.isfinite(width) and width > 0):
        raise ResdiagError(f"width multiplier must be a positive number, got {width}")
    if num_classes < 2:
        raise ResdiagError(f"number of classes must be >= 2, got {num_classes}")
    if not shape or any(s < 1 for s in shape):
        raise ResdiagError(f"input shape must be positive integers, got {_shape(shape)}")
    if not (math.isfinite(gain) and gain >= 0):
        raise ResdiagError(f"init gain must be a finite number >= 0, got {gain}")


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ResdiagError(f"unknown {what} {value!r}: use one of {', '.join(choices)}")


def _shape(shape: tuple[int, ...]) -> str:
    return ",".join(str(s) for s in shape)


def twin(cfg: ModelConfig) -> ModelConfig:
    """The plain twin of a residual config, or the residual twin of a plain one."""
    return replace(cfg, plain=not cfg.plain, shortcut=Shortcut())
