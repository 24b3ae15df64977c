"""Blocks and weights of transformer-style models: detection rules, keyword calls, tuple and dict
outputs, MultiheadAttention and HF Conv1D weights, token ranks in the feature probe."""

import math

import pytest
import torch
from torch import nn

from examples.user_models import TinyViT
from resdiag.metrics.tokens import token_rank
from resdiag.probes.features import FeatureProbe
from resdiag.probes.grad import GradientProbe
from resdiag.probes.layers import NO_BLOCKS_HINT, find_blocks, find_layers


class ConvLayer(nn.Module):  # a conv-norm-act triple named *Layer, as HF ResNet's
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x))


class BasicLayer(nn.Module):  # a residual unit named *Layer that holds two ConvLayers
    def __init__(self, c):
        super().__init__()
        self.layer = nn.Sequential(ConvLayer(c), ConvLayer(c))

    def forward(self, x):
        return x + self.layer(x)


class WeakNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = ConvLayer(4)  # outermost, but not repeated: not a block
        self.stages = nn.Sequential(BasicLayer(4), BasicLayer(4))

    def forward(self, x):
        return self.stages(self.stem(x)).mean((1, 2, 3))


class SwinBlock(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)

    def forward(self, x):
        return x + self.fc(x)


class StageLayer(nn.Module):  # a stage named *Layer (Swin's BasicLayer) around strong blocks
    def __init__(self, d):
        super().__init__()
        self.blocks = nn.Sequential(SwinBlock(d), SwinBlock(d))

    def forward(self, x):
        return self.blocks(x)


def test_weak_layer_names_keep_the_outermost_repeated_unit():
    assert [n for n, _ in find_blocks(WeakNet())] == ["stages.0", "stages.1"]


def test_strong_names_win_over_a_stage_named_layer():
    model = nn.Sequential(StageLayer(4), StageLayer(4))
    assert [n for n, _ in find_blocks(model)] == ["0.blocks.0", "0.blocks.1", "1.blocks.0", "1.blocks.1"]


def test_torch_transformer_layers_are_blocks_and_their_attention_is_weighed():
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)
    model = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
    assert [n for n, _ in find_blocks(model)] == ["layers.0", "layers.1", "layers.2"]
    names = [(la.name, la.kind) for la in find_layers(model)]
    assert names[:3] == [("layers.0.self_attn.in_proj", "linear"), ("layers.0.self_attn.out_proj", "linear"),
                         ("layers.0.linear1", "linear")]
    assert len(names) == 3 * 4


def test_mha_with_other_key_dims_lists_q_k_v():
    mha = nn.MultiheadAttention(8, 2, kdim=4, vdim=4)
    names = [la.name for la in find_layers(nn.Sequential(mha))]
    assert names == ["0.q_proj", "0.k_proj", "0.v_proj", "0.out_proj"]


def test_no_block_found_is_an_empty_list_with_a_hint():
    assert find_blocks(nn.Sequential(nn.Linear(3, 3), nn.ReLU())) == []
    assert "--blocks REGEX" in NO_BLOCKS_HINT


def test_hf_conv1d_is_a_transposed_matmul_and_tied_weights_sit_at_the_head():
    pytest.importorskip("transformers")
    from transformers.pytorch_utils import Conv1D

    conv = Conv1D(6, 4)  # nf=6 outputs, nx=4 inputs: weight (4, 6), y = x @ W + b
    emb = nn.Embedding(10, 4)
    head = nn.Linear(4, 10, bias=False)
    head.weight = emb.weight
    model = nn.ModuleDict({"emb": emb, "conv": conv, "head": head})
    layers = find_layers(model)
    assert [(la.name, la.kind) for la in layers] == [("conv", "conv1d_t"), ("head", "linear")]
    assert layers[0].matrix.shape == (6, 4) and torch.equal(layers[0].matrix, conv.weight.T)
    assert [la.kind for la in find_layers(nn.ModuleDict({"emb": nn.Embedding(3, 2)}))] == ["embedding"]


class KwargsBlock(nn.Module):
    """Called with hidden_states=..., returns (hidden_states, attention) like HF layers."""

    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)

    def forward(self, hidden_states=None, mask=None):
        return hidden_states + torch.tanh(self.fc(hidden_states)), None


class DictBlock(KwargsBlock):
    def forward(self, x):
        return {"last_hidden_state": x + torch.tanh(self.fc(x))}


class KwargsNet(nn.Module):
    def __init__(self, d=6):
        super().__init__()
        self.blocks = nn.ModuleList([KwargsBlock(d), KwargsBlock(d), DictBlock(d)])
        self.head = nn.Linear(d, 3)
        self.seen = []

    def forward(self, x):
        self.seen = [x]
        x = self.blocks[0](hidden_states=x)[0]
        self.seen.append(x)
        x = self.blocks[1](hidden_states=x, mask=None)[0]
        self.seen.append(x)
        x = self.blocks[2](x)["last_hidden_state"]
        self.seen.append(x)
        for t in self.seen:
            t.retain_grad()
        return self.head(x.mean(1))


def test_keyword_calls_and_tuple_and_dict_outputs_give_every_boundary():
    torch.manual_seed(0)
    model = KwargsNet().double()
    x = torch.randn(3, 5, 6, dtype=torch.float64, requires_grad=True)
    with GradientProbe(model) as probe:
        nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2])).backward()
        step = probe.step()
    want = [float(t.grad.norm()) for t in model.seen]
    assert step.boundary_names == ("blocks.0:in", "blocks.1:in", "blocks.2:in", "blocks.2:out")
    assert step.boundary_grad == pytest.approx(want, rel=1e-10)
    assert step.weight_grad == pytest.approx([float(la.weight.grad.norm()) for la in probe.layers], rel=1e-10)


def test_feature_probe_records_token_ranks_of_3d_boundaries():
    torch.manual_seed(0)
    model = TinyViT(depth=2)
    seen = []
    hooks = [b.register_forward_pre_hook(lambda m, a: seen.append(a[0])) for b in model.blocks]
    hooks.append(model.blocks[-1].register_forward_hook(lambda m, a, o: seen.append(o)))
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad(), FeatureProbe(model) as probe:
        model(x)
    for h in hooks:
        h.remove()
    probe.collect()
    assert [n for n, _, _ in probe.tokens] == ["blocks.0:in", "blocks.1:in", "blocks.1:out"]
    for (_, shape, got), t in zip(probe.tokens, seen, strict=True):
        want = token_rank(t)
        assert shape == (4, 17, 64)
        assert got.token_res == pytest.approx(want.token_res, rel=1e-12)
        assert got.token_erank == pytest.approx(want.token_erank, rel=1e-12)


def test_sequence_first_torch_layers_are_read_per_sample():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=False)
    model = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    x = torch.randn(5, 3, 8)  # (T, B, D)
    with torch.no_grad(), FeatureProbe(model) as probe:
        model(x)
    probe.collect()
    _, shape, got = probe.tokens[0]
    assert shape == (3, 5, 8)
    assert got.token_res == pytest.approx(token_rank(x.transpose(0, 1)).token_res, rel=1e-12)
    assert math.isfinite(got.token_erank_ratio)


def test_a_model_without_blocks_records_no_boundary_and_says_so():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    with GradientProbe(model) as probe:
        nn.functional.cross_entropy(model(torch.randn(5, 4)), torch.tensor([0, 1, 2, 0, 1])).backward()
        step = probe.step()
    assert probe.blocks == [] and step.boundary_grad == () and len(step.weight_grad) == 2
    with torch.no_grad(), FeatureProbe(model) as fprobe:
        model(torch.randn(5, 4))
    fprobe.collect()
    assert fprobe.boundaries == [] and fprobe.tokens == []


def test_diagnose_transformer_example_flags_only_the_residual_free_vit(capsys):
    from examples.diagnose_transformer import diagnose

    torch.manual_seed(0)
    diagnose(TinyViT(depth=6), "intact")
    torch.manual_seed(0)
    diagnose(TinyViT(depth=6, residual=False), "no residuals")
    intact, broken = capsys.readouterr().out.splitlines()
    assert intact.endswith("token findings: none")
    assert broken.endswith("token findings: tokens.res, tokens.retention")
