"""Which modules the probes watch: the weight layers and the block boundaries of a model.

Works on resdiag's own networks and on other people's: wrappers (DataParallel, DDP,
``torch.compile``) are looked through so names carry no ``module.``/``_orig_mod.`` prefix, and
blocks are found by marker, by class name, or by the caller's regular expression. The rules are
documented in docs/architectures.md ("Blocks", "Weights").
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from resdiag.errors import ResdiagError

WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
CONV_TRANSPOSE = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)
# Kinds of Layer. "embedding" is a table lookup, not a matmul on the residual stream: it is listed
# (and its gradient recorded) but not a candidate for the first/last matmul of AUTOTRAINER's rule.
MATMUL_KINDS = ("conv", "linear", "conv1d_t", "conv_transpose")
KINDS = (*MATMUL_KINDS, "embedding")
# Class names of residual units. Strong: torchvision's BasicBlock/Bottleneck, timm's Block, HF's
# GPT2Block, *EncoderLayer/*DecoderLayer (HF Llama/T5/BART/Whisper, nn.Transformer*Layer),
# "ResidualUnit", "ResBlock" ... Weak: any other *Layer (HF BertLayer, ViTLayer,
# ResNetBasicLayer), which also names stages and conv-norm-act triples, so it is only used when no
# strong name is found, and only for a class that repeats (docs/architectures.md, "Blocks").
STRONG_BLOCK = re.compile(r"(Block|Bottleneck|Unit|EncoderLayer|DecoderLayer)$")
WEAK_BLOCK = re.compile(r"Layer$")
TORCH_BLOCKS = (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)
NO_BLOCKS_HINT = "no block boundary found: name the blocks with --blocks REGEX"


@dataclass(frozen=True)
class Layer:
    name: str  # qualified module name, e.g. "stage1.0.branch.conv1"; MHA input proj: "<attn>.in_proj"
    kind: str  # one of KINDS: "conv", "linear", "conv1d_t" (HF Conv1D, in x out), "conv_transpose"
    # (in x out/groups x k...), "embedding"
    module: nn.Module
    # the attribute path of ``module`` holding the trained parameter: "weight", or for a weight
    # re-parametrized by torch (weight_norm, spectral_norm) its weight-shaped original,
    # "parametrizations.weight.original1" (v) / ".original", or old-style weight_norm's "weight_v"
    param: str = "weight"

    @property
    def weight(self) -> nn.Parameter:
        """The trained parameter: its gradient is the layer row's (docs/architectures.md)."""
        if "." not in self.param:
            return getattr(self.module, self.param)
        out = self.module
        for part in self.param.split("."):
            out = getattr(out, part)
        return out

    def effective(self) -> torch.Tensor:
        """The weight the forward pass uses, detached: the parameter itself, or what a
        parametrization makes of it (evaluated with the parametrizations in eval mode, so that
        spectral_norm's power iteration does not advance: no state of the model changes)."""
        if self.param == "weight_v":  # old-style weight_norm: recomputed by each forward
            return getattr(self.module, "weight").detach()
        if not self.param.startswith("parametrizations."):
            return self.weight.detach()
        plist = self.module.parametrizations["weight"]
        modes = [m.training for m in plist.modules()]
        try:
            plist.eval()
            with torch.no_grad():
                return self.module.weight.detach()
        finally:
            for m, mode in zip(plist.modules(), modes, strict=True):
                m.training = mode

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.weight.shape)

    @property
    def groups(self) -> int:
        return int(getattr(self.module, "groups", 1)) if self.kind in ("conv", "conv_transpose") else 1

    @property
    def fan_out(self) -> int:
        """Outputs of the map (He et al. 2015's fan-out)."""
        return fan_out(self.kind, self.shape, self.groups)

    @property
    def matrix(self) -> torch.Tensor:
        """The detached effective weight as the map acts: out x in (x kernel). HF's Conv1D stores
        in x out and computes x @ W, so it is transposed; ConvTranspose is left as stored (in x
        out/groups x k, the adjoint's layout). Singular values, hence every rank metric, and the
        gradient norm are the same either way (resdiag/metrics/rank.py, weight_matrices)."""
        w = self.effective()
        return w.T if self.kind == "conv1d_t" else w


def fan_out(kind: str, shape: tuple[int, ...], groups: int = 1) -> int:
    """``Layer.fan_out`` from a shape read once: HF Conv1D stores in x out, ConvTranspose
    in x out/groups x k."""
    if kind == "conv_transpose":
        return shape[1] * groups
    return shape[1] if kind == "conv1d_t" else shape[0]


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DataParallel / DistributedDataParallel / torch.compile / FSDP1 wrappers.

    Probing the compiled module's original runs it eagerly; hooks do not fire inside compiled
    graphs, so this is the only way to read per-layer numbers from a compiled model.
    """
    while True:
        inner = getattr(model, "_orig_mod", None)  # torch.compile's OptimizedModule
        if not isinstance(inner, nn.Module):  # FSDP1's FullyShardedDataParallel
            inner = getattr(model, "_fsdp_wrapped_module", None)
        if isinstance(inner, nn.Module):
            model = inner
            continue
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
            continue
        return model


def named_parameters(modules: list[tuple[str, nn.Module]]) -> list[tuple[str, nn.Parameter]]:
    """``root.named_parameters()`` from ``modules = list(root.named_modules())``: same names, same
    order, each parameter once, without torch's nested generators. The Monitor reads every
    parameter on each recorded step: module walk and this, 0.09 ms against torch's 0.13 ms on
    ResNet-18's 62 parameters, 0.22 against 0.28 ms on GPT-2's 148 (this 2-core machine)."""
    seen: set[int] = set()
    out: list[tuple[str, nn.Parameter]] = []
    for prefix, module in modules:
        for name, p in module._parameters.items():
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                out.append((f"{prefix}.{name}" if prefix else name, p))
    return out


def _is_hf_conv1d(module: nn.Module) -> bool:
    """transformers.pytorch_utils.Conv1D (GPT-2's projections), without importing transformers."""
    return type(module).__name__ == "Conv1D" and type(module).__module__.startswith("transformers")


def _matrices(name: str, module: nn.Module) -> list[Layer]:
    """The weight matrices one module holds directly, as Layers (none for most modules)."""
    if isinstance(module, nn.MultiheadAttention):
        # out_proj is an nn.Linear submodule (found on its own); the input projections are
        # parameters of the attention module: one packed (3E x E) matrix, or q/k/v separately.
        params = ("in_proj_weight",) if module.in_proj_weight is not None else \
            ("q_proj_weight", "k_proj_weight", "v_proj_weight")
        return [Layer(f"{name}.{p.removesuffix('_weight')}", "linear", module, p) for p in params]
    param = _weight_param(module)
    if param is None:
        return []
    if isinstance(module, WEIGHT_LAYERS):
        return [Layer(name, "linear" if isinstance(module, nn.Linear) else "conv", module, param)]
    if isinstance(module, CONV_TRANSPOSE):
        return [Layer(name, "conv_transpose", module, param)]
    if _is_hf_conv1d(module):
        return [Layer(name, "conv1d_t", module, param)]
    if isinstance(module, EMBEDDINGS):
        return [Layer(name, "embedding", module, param)]
    return []


def _weight_param(module: nn.Module) -> str | None:
    """Where a module's trained weight lives: "weight"; for a torch parametrization of "weight"
    (parametrizations.weight_norm, spectral_norm ...) its largest original, which is weight-shaped
    (weight_norm's v, spectral_norm's unnormalised W); for old-style nn.utils.weight_norm,
    "weight_v". None when the module has no weight parameter."""
    if parametrize.is_parametrized(module, "weight"):
        plist = module.parametrizations["weight"]
        names = [n for n, p in plist.named_parameters(recurse=False) if n.startswith("original")]
        if names:
            best = max(names, key=lambda n: getattr(plist, n).numel())
            return f"parametrizations.weight.{best}"
        return None
    if isinstance(getattr(module, "weight_v", None), nn.Parameter) and \
            isinstance(getattr(module, "weight_g", None), nn.Parameter):
        return "weight_v"
    return "weight" if isinstance(getattr(module, "weight", None), nn.Parameter) else None


def find_layers(model: nn.Module) -> list[Layer]:
    """Every matmul weight (conv, linear, HF Conv1D, nn.MultiheadAttention's projections) and every
    embedding, in registration order. A weight held by several modules is listed once, with its
    total gradient: under its first matmul holder when it has one (GPT-2's ``lm_head``, tied to
    ``wte``, is the last matmul, not an embedding), else under its first holder."""
    found: dict[int, Layer] = {}
    order: list[int] = []
    for name, module in unwrap(model).named_modules():
        for layer in _matrices(name, module):
            key = id(layer.weight)
            if key not in found:
                found[key] = layer
                order.append(key)
            elif found[key].kind == "embedding" and layer.kind in MATMUL_KINDS:
                found[key] = layer  # the tied head: listed where it acts as a matmul
                order.remove(key)
                order.append(key)
    return [found[k] for k in order]


def find_blocks(model: nn.Module, pattern: str | None = None) -> list[tuple[str, nn.Module]]:
    """The blocks whose inputs are the x_l of He et al. 2016's equations, outermost first, in order.

    ``pattern``: a regular expression matched (``re.fullmatch``) against qualified module names.
    Otherwise, the first rule that finds any: (1) modules marked ``resdiag_block = True`` (every
    block resdiag builds is); (2) nn.TransformerEncoderLayer/DecoderLayer and classes named
    ``*Block``, ``*Bottleneck``, ``*Unit``, ``*EncoderLayer``, ``*DecoderLayer``; (3) classes named
    ``*Layer`` that occur at least twice. In each rule a match nested in another match is dropped:
    the outermost repeated unit is the one on the residual stream (docs/architectures.md).
    An empty list means no block was found; callers say so (``NO_BLOCKS_HINT``).
    """
    root = unwrap(model)
    named = [(n, m) for n, m in root.named_modules() if n]
    if pattern is not None:
        try:
            rx = re.compile(pattern)
        except re.error as exc:
            raise ResdiagError(f"--blocks {pattern!r} is not a valid regular expression ({exc})") from None
        found = _outermost((n, m) for n, m in named if rx.fullmatch(n))
        if not found:
            raise ResdiagError(f"--blocks {pattern!r} matches no module name (e.g. 'layer[1-4]\\.\\d+')")
        return found
    marked = _outermost((n, m) for n, m in named if getattr(m, "resdiag_block", False))
    if marked:
        return marked
    strong = _outermost(
        (n, m) for n, m in named
        if isinstance(m, TORCH_BLOCKS) or STRONG_BLOCK.search(type(m).__name__)
    )
    if strong:
        return strong
    weak = _outermost((n, m) for n, m in named if WEAK_BLOCK.search(type(m).__name__))
    counts = Counter(type(m) for _, m in weak)
    return [(n, m) for n, m in weak if counts[type(m)] >= 2]


def _outermost(candidates) -> list[tuple[str, nn.Module]]:
    blocks: list[tuple[str, nn.Module]] = []
    for name, module in candidates:
        if not any(name.startswith(f"{outer}.") for outer, _ in blocks):
            blocks.append((name, module))
    return blocks


def as_btd(x: torch.Tensor, layout: str) -> torch.Tensor:
    """A 3-D boundary in (batch, tokens, features) order, from its layout (resdiag/probes/layout.py)."""
    if layout == "tbd":
        return x.transpose(0, 1)
    if layout == "bdt":
        return x.transpose(1, 2)
    return x
