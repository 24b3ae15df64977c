"""Transformer encoders with pre-LN or post-LN residual streams, and their residual-free twins.

post-LN (Vaswani et al. 2017):  x = LN(x + Attn(x));     x = LN(x + FFN(x))
pre-LN  (Xiong et al. 2020):    x = x + Attn(LN(x));     x = x + FFN(LN(x));  LN before the head
plain twin: the same modules, the sums replaced by the branch alone (``zoo.blocks.BranchOnly``).

Xiong et al. 2020, "On Layer Normalization in the Transformer Architecture" (ICML), Fig. 3 and
Theorem 1: at initialisation the post-LN gradient of the last layers' weights is large and grows
toward the output; pre-LN's is flat in the layer index. The classifier head mean-pools the tokens
(as a ViT with global pooling does) so these nets run through resdiag's classification loss.

Token ids: an int64 input (B, T) is used as is. A float input (B, T), which is what resdiag's
synthetic zoo batches are until the ``--tokens`` input kind lands, is mapped to ids by
``ids = floor(Phi(x) * vocab_size)`` (Phi the standard normal CDF): N(0, 1) inputs give uniform ids.
Positions are the sinusoidal encoding of Vaswani et al. 2017, so any sequence length works.
No in-place operations and no dropout: backward hooks see every tensor, runs are deterministic.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from resdiag.zoo.blocks import make_combine
from resdiag.zoo.config import Shortcut, TransformerConfig


def as_token_ids(x: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """int64 ids as given; float N(0, 1) inputs mapped to uniform ids floor(Phi(x) * vocab)."""
    if not x.is_floating_point():
        return x.long()
    ids = torch.floor(torch.special.ndtr(x.float()) * vocab_size).long()
    return ids.clamp(0, vocab_size - 1)


def sinusoidal(tokens: int, dim: int, device=None) -> torch.Tensor:
    """PE[t, 2i] = sin(t / 10000^(2i/d)), PE[t, 2i+1] = cos(...) (Vaswani et al. 2017, sec. 3.5)."""
    pos = torch.arange(tokens, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(1e4) / dim))
    pe = torch.zeros(tokens, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return pe


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention (not causal), one packed qkv projection."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        out = out.transpose(1, 2).reshape(b, t, d)
        return self.proj(out)


def feed_forward(dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(fc1=nn.Linear(dim, hidden), act=nn.GELU(), fc2=nn.Linear(hidden, dim)))


class _Layer(nn.Module):
    """Two sublayers (attention, feed-forward), each with its norm and its residual sum."""

    resdiag_block = True

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        d = cfg.width
        self.ln1 = nn.LayerNorm(d)
        self.attn = SelfAttention(d, cfg.heads)
        self.add1 = make_combine(Shortcut(), cfg.plain, d, d, 1)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = feed_forward(d, cfg.mlp_ratio * d)
        self.add2 = make_combine(Shortcut(), cfg.plain, d, d, 1)


class PreLNLayer(_Layer):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.add1(x, x, self.attn(self.ln1(x)))
        return self.add2(x, x, self.mlp(self.ln2(x)))


class PostLNLayer(_Layer):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln1(self.add1(x, x, self.attn(x)))
        return self.ln2(self.add2(x, x, self.mlp(x)))


class Transformer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.config = cfg
        d = cfg.width
        self.embed = nn.Embedding(cfg.vocab_size, d)
        layer = PreLNLayer if cfg.placement == "preln" else PostLNLayer
        self.layers = nn.Sequential(*[layer(cfg) for _ in range(cfg.depth)])
        # pre-LN needs a final LN (Xiong et al. 2020, Fig. 1); post-LN's output is normalised.
        self.norm = nn.LayerNorm(d) if cfg.placement == "preln" else nn.Identity()
        self.head = nn.Linear(d, cfg.num_classes)
        self._init(cfg.init_gain)

    def _init(self, gain: float) -> None:
        """Xavier-uniform linear weights, zero biases (Xiong et al. 2020, sec. 3.1 follow Vaswani
        et al.); embeddings N(0, 1), i.e. Vaswani's N(0, 1/d) times their sqrt(d) scale."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight)
            if gain != 1.0 and isinstance(m, (nn.Linear, nn.Embedding)):
                with torch.no_grad():
                    m.weight.mul_(gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = as_token_ids(x, self.config.vocab_size)
        h = self.embed(ids)
        h = h + sinusoidal(ids.shape[1], h.shape[-1], h.device)
        h = self.layers(h)
        h = self.norm(h)
        return self.head(h.mean(1))
