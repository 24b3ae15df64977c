"""Options shared by the commands, as ``Annotated`` aliases, and their parsing into configs.

The model options (what to diagnose) are declared once, in ``MODEL_OPTIONS``; a command takes them
all with ``@model_options`` and receives one ``ModelOptions``, which ``target_specs`` turns into
``TargetSpec``s. Nothing here imports torch: ``resdiag --help`` must stay fast.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import fields, make_dataclass
from pathlib import Path
from typing import Annotated

import typer

from resdiag.diagnosis.thresholds import GradThresholds, RankThresholds
from resdiag.errors import ResdiagError
from resdiag.run.spec_fields import ZOO_NAMES, ZOO_OPTIONS, default, zoo_config

DEFAULT_GRAD = GradThresholds()
DEFAULT_RANK = RankThresholds()

MODEL = "Model"
RUN = "Run"
OUTPUT = "Output"

Arch = Annotated[str | None, typer.Option(
    "--arch", "-a", rich_help_panel=MODEL,
    help="Architecture: a name from 'resdiag models' (resnet110, plain56, preact_resnet164, mlp, ...). "
         "Default: resnet.")]
Depth = Annotated[int | None, typer.Option(
    "--depth", "-d", rich_help_panel=MODEL,
    help="Depth: 6n+2 (basic) or 9n+2 (bottleneck) for ResNets, number of blocks for MLPs.")]
Plain = Annotated[bool, typer.Option(
    "--plain", rich_help_panel=MODEL, help="The plain twin: the same layers without shortcuts.")]
ShortcutOpt = Annotated[str | None, typer.Option(
    "--shortcut", rich_help_panel=MODEL,
    help="identity | scale:LAM[,F_SCALE] | gate[:B_G] | shortcut_gate[:B_G] | conv | dropout[:P].")]
Block = Annotated[str | None, typer.Option(
    "--block", rich_help_panel=MODEL, help="basic | bottleneck (default: by depth).")]
Projection = Annotated[str | None, typer.Option(
    "--projection", rich_help_panel=MODEL,
    help="Where the shape changes: A (zero-padded identity) or B (1x1 conv).")]
Placement = Annotated[str | None, typer.Option(
    "--placement", rich_help_panel=MODEL,
    help="post | bn_after_add | relu_before_add | relu_preact | preact (He et al. 2016, Table 2).")]
Norm = Annotated[str | None, typer.Option(
    "--norm", rich_help_panel=MODEL, help="batch | none.")]
Width = Annotated[float | None, typer.Option(
    "--width", rich_help_panel=MODEL,
    help="ResNets: multiplier on the 16/32/64 filters. MLPs: units per layer.")]
NumClasses = Annotated[int | None, typer.Option(
    "--num-classes", rich_help_panel=MODEL, help="Number of classes (default 10).")]
InputShape = Annotated[str | None, typer.Option(
    "--input-shape", rich_help_panel=MODEL, help="Input shape C,H,W (default 3,32,32).")]
InitGain = Annotated[float | None, typer.Option(
    "--init-gain", rich_help_panel=MODEL, help="Multiply every initial weight by this factor.")]
BranchGain = Annotated[float | None, typer.Option(
    "--branch-gain", rich_help_panel=MODEL,
    help="MLPs: std of branch weights is GAIN*sqrt(2/width) (default 1 plain, 1/sqrt(depth) residual).")]

UserModel = Annotated[str | None, typer.Option(
    "--model", "-m", rich_help_panel=MODEL,
    help="Your own model: package.module:factory, a callable returning an nn.Module (imports and runs "
         "your code). Takes --input-shape or --tokens, --num-classes, --checkpoint, --blocks, --seed.")]
Tokens = Annotated[int | None, typer.Option(
    "--tokens", rich_help_panel=MODEL,
    help="Feed int64 token ids of this sequence length instead of images (language models).")]
Vocab = Annotated[int | None, typer.Option(
    "--vocab", rich_help_panel=MODEL,
    help="With --tokens: ids in [0, N) (default: the size of the model's input embedding).")]
Blocks = Annotated[str | None, typer.Option(
    "--blocks", rich_help_panel=MODEL,
    help="Regular expression over module names picking the blocks whose inputs are the x_l "
         "(default: resdiag's blocks, else classes named *Block/*Bottleneck/*Unit).")]

Batches = Annotated[int, typer.Option("--batches", "-k", rich_help_panel=RUN,
                                      help="Mini-batches to average over.")]
BatchSize = Annotated[int, typer.Option("--batch-size", "-b", rich_help_panel=RUN, help="Mini-batch size.")]
Seed = Annotated[int, typer.Option("--seed", rich_help_panel=RUN,
                                   help="Random seed of the weights (zoo and --model factories) and data.")]
Device = Annotated[str, typer.Option("--device", rich_help_panel=RUN, help="auto | cpu | cuda | cuda:N.")]
Data = Annotated[str, typer.Option("--data", rich_help_panel=RUN,
                                   help="synthetic (N(0,1) images, uniform labels) or cifar10:PATH.")]
Loss = Annotated[str, typer.Option(
    "--loss", rich_help_panel=MODEL,
    help="E: cross_entropy (next-token for (batch, T, V) logits), mse against one-hot labels, or model "
         "(the output's own 'loss'; docs/architectures.md).")]
Mode = Annotated[str, typer.Option("--mode", rich_help_panel=RUN,
                                   help="train (BN uses batch statistics) or eval.")]

JsonOut = Annotated[Path | None, typer.Option("--json", rich_help_panel=OUTPUT,
                                              help="Write the result as JSON (docs/schema.md).")]
PlotOut = Annotated[Path | None, typer.Option("--plot", rich_help_panel=OUTPUT,
                                              help="Write a figure (.png, .svg or .pdf).")]
Compare = Annotated[bool, typer.Option("--compare", rich_help_panel=OUTPUT,
                                       help="Also run the plain/residual twin; one table, one figure.")]
Rows = Annotated[int, typer.Option("--rows", rich_help_panel=OUTPUT,
                                   min=0, help="Most table rows to show (evenly spread); 0 shows all.")]
VanishRatio = Annotated[float, typer.Option(
    "--vanish-ratio", rich_help_panel=OUTPUT,
    help="Vanishing when ||dE/dx_0|| / ||dE/dx_L||, or its fitted trend, is below.")]
ExplodeRatio = Annotated[float, typer.Option(
    "--explode-ratio", rich_help_panel=OUTPUT,
    help="Exploding when ||dE/dx_0|| / ||dE/dx_L||, or its fitted trend, is above.")]
Checkpoint = Annotated[Path | None, typer.Option(
    "--checkpoint", rich_help_panel=MODEL,
    help="Load a state_dict (torch.load with weights_only=True) into the model.")]
Conv = Annotated[str, typer.Option(
    "--conv", rich_help_panel=RUN,
    help="A conv weight as one matrix out x (in*kh*kw) (flat) or as its kh*kw slices W[:,:,i,j] "
         "pooled, as WeightWatcher does (slices).")]
Rtol = Annotated[float | None, typer.Option(
    "--rtol", rich_help_panel=RUN, help="Numerical rank: s > rtol*s_max (default max(m,n)*eps).")]
Atol = Annotated[float | None, typer.Option(
    "--atol", rich_help_panel=RUN, help="Numerical rank: also s > atol (default 0).")]
RankMode = Annotated[str | None, typer.Option(
    "--mode", rich_help_panel=RUN,
    help="train (BN batch statistics) or eval; default train, eval with --checkpoint.")]
Retention = Annotated[float, typer.Option(
    "--min-retention", rich_help_panel=OUTPUT,
    help="Collapse when erank ratio(x_L) / erank ratio(x_0) is below.")]
Rank1 = Annotated[float, typer.Option(
    "--min-rank1-distance", rich_help_panel=OUTPUT,
    help="Collapse when ||X_L - X_1|| / ||X_L|| is below.")]
WeightErank = Annotated[float, typer.Option(
    "--min-weight-erank", rich_help_panel=OUTPUT,
    help="Collapse when a weight's erank / min(m, n) is below.")]
Strict = Annotated[bool, typer.Option("--strict", rich_help_panel=OUTPUT,
                                      help="Exit 1 when the verdict is not healthy.")]


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    parts = text.strip().replace("x", ",").split(",") if "," in text or "x" in text else [text]
    try:
        shape = tuple(int(s) for s in parts)
    except ValueError:
        raise ResdiagError(f"malformed --input-shape {text!r}: use integers like 3,32,32") from None
    if not shape or any(s < 1 for s in shape):
        raise ResdiagError(f"malformed --input-shape {text!r}: use positive integers like 3,32,32")
    return shape


def _given(self) -> bool:
    """Whether any option was given (train: else the model comes from --resume)."""
    return any(getattr(self, f.name) != f.default for f in fields(self))


# The model options of a command, as given (None: not given): a frozen, keyword-only dataclass whose
# zoo fields are resdiag/run/spec_fields.py's ZOO_OPTIONS (one list for the CLI and check configs).
ModelOptions = make_dataclass(
    "ModelOptions",
    [("arch", str | None, None),
     *[(o.name, o.type if o.type is bool else o.type | None, default(o)) for o in ZOO_OPTIONS],
     ("num_classes", int | None, None), ("input_shape", str | None, None), ("tokens", int | None, None),
     ("vocab", int | None, None), ("model", str | None, None), ("blocks", str | None, None),
     ("checkpoint", Path | None, None), ("loss", str, "cross_entropy")],
    frozen=True, kw_only=True, namespace={"given": _given, "__module__": __name__})

# The option of each ModelOptions field: (name, Annotated alias), in the dataclass's order.
_ALIASES = {
    "arch": Arch, "depth": Depth, "plain": Plain, "shortcut": ShortcutOpt, "block": Block,
    "projection": Projection, "placement": Placement, "norm": Norm, "width": Width,
    "num_classes": NumClasses, "input_shape": InputShape, "tokens": Tokens, "vocab": Vocab,
    "init_gain": InitGain, "branch_gain": BranchGain, "model": UserModel, "blocks": Blocks,
    "checkpoint": Checkpoint, "loss": Loss,
}
MODEL_OPTIONS = tuple((f.name, _ALIASES[f.name]) for f in fields(ModelOptions))


def model_options(func):
    """Give a command every model option; it receives them as one ``ModelOptions`` (``target``)."""
    sig = inspect.signature(func, eval_str=True)
    own = [p for p in sig.parameters.values() if p.name != "target"]
    defaults = ModelOptions()
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=getattr(defaults, name),
                                annotation=alias) for name, alias in MODEL_OPTIONS]
    keyword = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
    required = [p for p in keyword if p.default is inspect.Parameter.empty]
    params = required + shared + [p for p in keyword if p.default is not inspect.Parameter.empty]

    @functools.wraps(func)
    def command(**kwargs):
        target = ModelOptions(**{name: kwargs.pop(name) for name, _ in MODEL_OPTIONS})
        return func(target=target, **kwargs)

    del command.__wrapped__  # typer must see the new signature, not func's
    command.__signature__ = sig.replace(parameters=params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


def model_config(opts: ModelOptions):
    """The validated zoo config for the model options of a command."""
    return zoo_config(opts.arch, {k: getattr(opts, k) for k in ZOO_NAMES}, num_classes=opts.num_classes,
                      input_shape=parse_shape(opts.input_shape))


def target_specs(opts: ModelOptions, *, seed: int, compare: bool = False) -> list:
    """What a command runs on: one ``TargetSpec``, or with ``compare`` the zoo config and its twin
    (plain first)."""
    from resdiag.run.inputs import InputSpec
    from resdiag.run.target import TargetSpec

    if opts.tokens is not None and opts.input_shape is not None:
        raise ResdiagError("give --input-shape (float inputs) or --tokens (token ids), not both")
    if opts.tokens is not None:
        inputs = InputSpec(kind="tokens", seq_len=opts.tokens, vocab=opts.vocab)
    else:
        inputs = InputSpec(vocab=opts.vocab)
    common = dict(inputs=inputs, checkpoint=opts.checkpoint, blocks=opts.blocks, seed=seed, loss=opts.loss)
    if opts.model is None:
        from resdiag.zoo import twin

        cfg = model_config(opts)
        if compare and opts.checkpoint:
            raise ResdiagError("--compare builds the twin at initialisation; it cannot take --checkpoint")
        cfgs = sorted([cfg, twin(cfg)] if compare else [cfg], key=lambda c: not c.plain)
        return [TargetSpec(arch=c, **common) for c in cfgs]
    zoo = ("arch", *ZOO_NAMES)
    given = [f"--{k.replace('_', '-')}" for k in zoo if getattr(opts, k) not in (None, False)]
    if compare:
        given.append("--compare")
    if given:
        raise ResdiagError(f"--model builds your own network; {', '.join(given)} only apply to the zoo")
    if opts.tokens is None:
        inputs = InputSpec(shape=parse_shape(opts.input_shape))
    return [TargetSpec(factory=opts.model, num_classes=opts.num_classes, **{**common, "inputs": inputs})]
