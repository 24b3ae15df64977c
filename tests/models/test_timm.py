"""timm's VisionTransformer and ResNet (small configs, random init, never pretrained) through the
probes, the Monitor and the CLI: every recorded norm against autograd, intact models healthy, broken
ones flagged, and ``set_grad_checkpointing(True)`` giving the same boundaries.

timm needs a torchvision that imports; where it does not (this CPU machine has only CUDA wheels of
torchvision), the whole file is skipped with the reason. Self-contained: the models, their
reference forward passes and the faults are defined here, so the file runs on any machine with
timm 1.x, torch and resdiag on ``PYTHONPATH`` (no network, no weights).
"""

from __future__ import annotations

import json
import math
import types
from pathlib import Path

import pytest
import torch
from torch import nn

try:  # timm imports torchvision at import time: try it first, it fails fast where it is missing
    import torchvision  # noqa: F401
    import timm
    from timm.models.resnet import BasicBlock, ResNet
    from timm.models.vision_transformer import VisionTransformer
except Exception as exc:  # ImportError, or a torchvision build that fails on this torch (RuntimeError)
    pytest.skip(f"timm cannot be imported here ({type(exc).__name__}: {exc}); it needs timm 1.x and a "
                "torchvision built for this torch", allow_module_level=True)

from resdiag.api import Monitor
from resdiag.probes.grad import GradientProbe
from resdiag.probes.layers import find_blocks, find_layers
from tests.helpers import invoke_out

ROOT = Path(__file__).resolve().parents[2]
BATCH, CLASSES = 4, 10


# -- the models (module:callable factories for the CLI too) ------------------------------------------

def vit(depth: int = 4) -> nn.Module:
    return VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=depth, num_heads=2,
                             num_classes=CLASSES)


def resnet() -> nn.Module:
    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes=CLASSES)


def _vit_block_without_residual(self, x, *args, **kwargs):
    """timm's ViT Block with both residual sums removed: x = attn(norm1(x)); x = mlp(norm2(x))."""
    x = self.drop_path1(self.ls1(self.attn(self.norm1(x))))
    return self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


def _basic_block_without_residual(self, x):
    """timm's BasicBlock without ``x += shortcut`` (its drop_block, aa and se are identities here)."""
    x = self.act1(self.bn1(self.conv1(x)))
    return self.act2(self.bn2(self.conv2(x)))


def vit_no_residual() -> nn.Module:
    """Depth 6: the depth at which residual-free transformers collapse their tokens (docs/tokens.md)."""
    model = vit(depth=6)
    for block in model.blocks:
        block.forward = types.MethodType(_vit_block_without_residual, block)
    return model


def resnet_no_residual() -> nn.Module:
    model = resnet()
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        for block in stage:
            block.forward = types.MethodType(_basic_block_without_residual, block)
    return model


def scaled(model: nn.Module, factor: float) -> nn.Module:
    """Every weight matrix (and the ViT's tokens and position table) times ``factor``."""
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim >= 2:
                p.mul_(factor)
    return model


# x1e-4: the ViT's first block then gets ~1e-5 of the head's gradient (AUTOTRAINER); in the ResNet
# BatchNorm's eps outweighs the batch variance of every stage (at x1e-3 BatchNorm still rescales it
# and the model is healthy: the gradient ratio is 8e-3).
SMALL = 1e-4


def vit_small_init() -> nn.Module:
    return scaled(vit(), SMALL)


def resnet_small_init() -> nn.Module:
    return scaled(resnet(), SMALL)


MODELS = {"vit": vit, "resnet": resnet}
BROKEN = {"vit_no_residual": vit_no_residual, "vit_small_init": vit_small_init,
          "resnet_no_residual": resnet_no_residual, "resnet_small_init": resnet_small_init}


# -- an autograd reference: the model's own forward, written out, with retain_grad on each x_l ------

def reference_forward(model: nn.Module, x: torch.Tensor):
    """(logits, [x_0, ..., x_L]): the inputs of every block, then the last block's output, each with
    ``retain_grad``; the same computation as ``model(x)`` (checked by the tests)."""
    states: list[torch.Tensor] = []

    def keep(h):
        if h.requires_grad:
            h.retain_grad()
        states.append(h)

    if isinstance(model, VisionTransformer):
        h = model.norm_pre(model.patch_drop(model._pos_embed(model.patch_embed(x))))
        blocks = list(model.blocks)
    else:
        h = model.maxpool(model.act1(model.bn1(model.conv1(x))))
        blocks = [b for stage in (model.layer1, model.layer2, model.layer3, model.layer4) for b in stage]
    for block in blocks:
        keep(h)
        h = block(h)
    keep(h)
    if isinstance(model, VisionTransformer):
        h = model.norm(h)
    return model.forward_head(h), states


def _batch(seed: int = 0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(BATCH, 3, 32, 32, generator=gen, dtype=dtype),
            torch.randint(0, CLASSES, (BATCH,), generator=gen))


def _build(make, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return make().double().train()


def norm(t: torch.Tensor | None) -> float:
    """||t||_2 in float64; 0 for a gradient that is None (a layer no gradient reached)."""
    return 0.0 if t is None else math.sqrt(float(t.detach().double().square().sum()))


# -- tests --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(MODELS))
def test_blocks_and_weights_are_found(name):
    model = _build(MODELS[name])
    blocks = [n for n, _ in find_blocks(model)]
    assert blocks == ([f"blocks.{i}" for i in range(4)] if name == "vit"
                      else [f"layer{i}.0" for i in range(1, 5)])
    listed = {id(layer.weight) for layer in find_layers(model)}
    unlisted = [n for n, p in model.named_parameters() if p.ndim >= 2 and id(p) not in listed]
    assert unlisted == ([] if name == "resnet" else ["cls_token", "pos_embed"])


@pytest.mark.parametrize("name", list(MODELS))
def test_reference_forward_is_the_models_forward(name):
    model = _build(MODELS[name])
    x, _ = _batch()
    with torch.no_grad():
        assert torch.equal(reference_forward(model, x)[0], model(x))


@pytest.mark.parametrize("name", list(MODELS))
def test_probe_norms_equal_autograd(name):
    model = _build(MODELS[name])
    x, y = _batch()
    with GradientProbe(model) as probe:
        logits, states = reference_forward(model, x)
        model.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(logits, y).backward()
        step = probe.step()
    assert step.weight_grad == pytest.approx([norm(la.weight.grad) for la in probe.layers], rel=1e-5)
    assert step.boundary_grad == pytest.approx([norm(h.grad) for h in states], rel=1e-5)
    assert len(step.boundary_grad) == len(find_blocks(model)) + 1


def _monitor(model, features: bool = True, seed: int = 0):
    """One recorded Monitor step; its weight norms checked against p.grad on the way."""
    monitor = Monitor(model, every=1, features=features)
    x, y = _batch(seed, dtype=next(model.parameters()).dtype)
    with monitor.record(0) as rec:
        nn.functional.cross_entropy(model(x), y).backward()
    layers = rec.recording.result.layers
    assert [la.grad_norm for la in layers if la.has_grad] == pytest.approx(
        [norm(la.weight.grad) for la in find_layers(model) if la.weight.grad is not None], rel=1e-5)
    # a layer no gradient reached (the unused downsample of a residual-free block) is marked so
    assert [la.has_grad for la in layers] == [la.weight.grad is not None for la in find_layers(model)]
    return rec.recording


@pytest.mark.parametrize("name", list(MODELS))
def test_monitor_intact_models_are_healthy(name):
    rec = _monitor(_build(MODELS[name]))
    assert rec.result.verdict.findings == (), rec.result.verdict
    assert rec.rank is not None and rec.rank.verdict.findings == (), rec.rank.verdict


@pytest.mark.parametrize("name", list(BROKEN))
def test_monitor_broken_models_are_flagged(name):
    rec = _monitor(_build(BROKEN[name]))
    statuses = {rec.result.verdict.status, rec.rank.verdict.status}
    assert statuses - {"healthy", "inconclusive"}, (rec.result.verdict, rec.rank.verdict)


@pytest.mark.parametrize("name", list(MODELS))
def test_grad_checkpointing_gives_the_same_boundaries(name):
    """timm's ``set_grad_checkpointing`` reruns the blocks during backward (checkpoint_seq): the
    recomputation adds no boundary and changes no number."""
    plain = _monitor(_build(MODELS[name]), features=False)
    model = _build(MODELS[name])
    model.set_grad_checkpointing(True)
    ckpt = _monitor(model, features=False)
    assert [b.name for b in ckpt.result.boundaries] == [b.name for b in plain.result.boundaries]
    assert [b.grad_norm for b in ckpt.result.boundaries] == pytest.approx(
        [b.grad_norm for b in plain.result.boundaries], rel=1e-9)
    assert [la.grad_norm for la in ckpt.result.layers] == pytest.approx(
        [la.grad_norm for la in plain.result.layers], rel=1e-9)
    assert ckpt.result.verdict == plain.result.verdict


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("name, healthy", [("vit", True), ("resnet", True), ("vit_no_residual", False),
                                           ("resnet_no_residual", False)])
@pytest.mark.parametrize("command", ["grad-flow", "rank"])
def test_cli(tmp_path, at_root, name, healthy, command):
    out = tmp_path / "r.json"
    code, _, err = invoke_out([command, "--model", f"tests.models.test_timm:{name}", "--input-shape",
                               "3,32,32", "--num-classes", str(CLASSES), "-b", "8", "--seed", "0",
                               "--device", "cpu", "--strict", "--json", str(out),
                               *(["-k", "1"] if command == "grad-flow" else [])])
    # e.g. typer 0.29 imports pydantic when it parses options: a machine without it cannot run the CLI
    if code == 2 and ("ImportError" in err or "ModuleNotFoundError" in err):
        pytest.skip(f"the CLI cannot run in this environment: {err.strip()}")
    d = json.loads(out.read_text())
    status = d["verdict"]["status"]
    if command == "grad-flow":
        torch.manual_seed(0)
        model = globals()[name]()
        assert [x["name"] for x in d["layers"]] == [la.name for la in find_layers(model)]
        assert len(d["boundaries"]) == len(find_blocks(model)) + 1
    if healthy:
        assert (code, status) == (0, "healthy"), err
    elif command == "rank" or name == "resnet_no_residual":
        assert code == 1 and status not in ("healthy", "inconclusive"), d["verdict"]


def test_timm_version_is_1x():
    assert int(timm.__version__.split(".")[0]) >= 1
