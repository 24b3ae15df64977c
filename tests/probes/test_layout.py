"""Which axes of a 3-D boundary are tokens (resdiag/probes/layout.py), checked by the token erank
against float64 numpy on the axes the block really uses."""

import math

import numpy as np
import torch
from torch import nn

from resdiag.diagnosis.rank import diagnose_rank
from resdiag.probes.features import FeatureProbe
from resdiag.probes.layout import vote
from resdiag.results import FeatureRankRow, RankSummary


def token_erank_ratio_np(x):
    """Float64 reference: mean over samples of erank(X_b - 1 mean) / min(T - 1, D), x (B, T, D)."""
    out = []
    for xb in x:
        s = np.linalg.svd(xb - xb.mean(0), compute_uv=False)
        s = s[s > 1e-9 * s.max()]
        p = s / s.sum()
        out.append(math.exp(-(p * np.log(p)).sum()) / min(x.shape[1] - 1, x.shape[2]))
    return float(np.mean(out))


class ConformerConv(nn.Module):
    """(B, T, D) stream; a depthwise Conv1d inside, after a transpose (Conformer's conv module)."""

    def __init__(self, d):
        super().__init__()
        self.norm, self.pw = nn.LayerNorm(d), nn.Linear(d, d)
        self.dw = nn.Conv1d(d, d, 3, padding=1, groups=d)

    def forward(self, x):
        return x + self.pw(torch.relu(self.dw(self.norm(x).transpose(1, 2)).transpose(1, 2)))


class ScaleNorm(nn.Module):
    """An RMSNorm of HF's kind: its only parameter a vector of the feature width."""

    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return self.weight * x / x.square().mean(-1, keepdim=True).add(1e-6).sqrt()


class MambaLike(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm, self.conv, self.out = ScaleNorm(d), nn.Conv1d(d, d, 4, padding=3, groups=d), nn.Linear(d, d)

    def forward(self, x):
        t = x.shape[1]
        return x + self.out(self.conv(self.norm(x).transpose(1, 2))[..., :t].transpose(1, 2))


class ConvUnit(nn.Module):
    """A true (B, C, T) residual conv block."""

    def __init__(self, c):
        super().__init__()
        self.bn, self.conv = nn.BatchNorm1d(c), nn.Conv1d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.conv(torch.relu(self.bn(x)))


class Opaque(nn.Module):
    """Transposes before any layer: nothing inside sees x itself."""

    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv1d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.conv(x.transpose(1, 2)).transpose(1, 2)


def probe(blocks, x):
    torch.manual_seed(0)
    seen = []
    hooks = [b.register_forward_pre_hook(lambda m, a: seen.append(a[0].double().numpy())) for b in blocks]
    model = nn.Sequential(*blocks)
    with torch.no_grad(), FeatureProbe(model, [(str(i), b) for i, b in enumerate(blocks)]) as p:
        model(x)
        p.collect()
    for h in hooks:
        h.remove()
    return p, seen


def test_a_conformer_block_is_read_as_batch_tokens_features():
    torch.manual_seed(0)
    x = torch.randn(8, 12, 24)  # T = 12, D = 24
    p, seen = probe([ConformerConv(24), ConformerConv(24)], x)
    assert [t.tokens for _, _, t in p.tokens] == [12, 12, 12] and p.layout_unknown == []
    for (_, _, t), xs in zip(p.tokens[:2], seen, strict=True):
        assert math.isclose(t.token_erank_ratio, token_erank_ratio_np(xs), rel_tol=1e-9)


def test_a_mamba_like_block_with_a_vector_norm_is_batch_tokens_features():
    torch.manual_seed(0)
    p, seen = probe([MambaLike(32), MambaLike(32)], torch.randn(4, 10, 32))
    assert [t.tokens for _, _, t in p.tokens] == [10, 10, 10]
    assert math.isclose(p.tokens[1][2].token_erank_ratio, token_erank_ratio_np(seen[1]), rel_tol=1e-9)


def test_a_conv_stack_is_read_as_batch_channels_positions():
    torch.manual_seed(0)
    x = torch.randn(8, 16, 20)  # C = 16 channels, T = 20 positions
    p, seen = probe([ConvUnit(16), ConvUnit(16)], x)
    assert [t.tokens for _, _, t in p.tokens] == [20, 20, 20]
    for (_, _, t), xs in zip(p.tokens[:2], seen, strict=True):
        assert math.isclose(t.token_erank_ratio, token_erank_ratio_np(xs.transpose(0, 2, 1)), rel_tol=1e-9)


def test_an_undecidable_block_is_inconclusive_not_guessed():
    torch.manual_seed(0)
    p, _ = probe([Opaque(16), Opaque(16)], torch.randn(8, 12, 16))
    assert p.tokens == [] and p.layout_unknown == ["0:in", "1:in", "1:out"]
    rows = tuple(FeatureRankRow(i, name, (8, 12, 16), 50.0, 0.7, 0.6, 0.5, 1.0, 1.0, True)
                 for i, name in enumerate(p.layout_unknown))
    v = diagnose_rank(RankSummary(0.7, 0.7, 1.0, 0.6, 0.9, 0.9, 2.0), (), rows, weights_measured=False)
    (f,) = [f for f in v.findings if f.rule.startswith("evidence.tokens")]
    assert v.status == "inconclusive" and "token rank not measured at 0:in" in f.message


def test_votes():
    x = torch.zeros(2, 5, 7)
    assert vote(nn.Linear(7, 3), x) == vote(nn.LayerNorm(7), x) == vote(ScaleNorm(7), x) == "btd"
    assert vote(nn.Conv1d(5, 5, 1), x) == vote(nn.BatchNorm1d(5), x) == vote(ScaleNorm(5), x) == "bdt"
    assert vote(ScaleNorm(6), torch.zeros(2, 6, 6)) is None  # T == D: the vector says nothing
    assert vote(nn.MultiheadAttention(7, 1), x) == "tbd" and vote(nn.ReLU(), x) is None
