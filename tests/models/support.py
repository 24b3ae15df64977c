"""Real transformer and ResNet models for the probe tests: tiny HuggingFace configs with random
init (never ``from_pretrained``: no weights are downloaded), their losses, ways to break them, and
an autograd reference for every norm the probes record."""

from __future__ import annotations

import math
import types

import pytest
import torch
from torch import nn

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

VOCAB, SEQ, BATCH = 64, 8, 4


def gpt2(init_std: float = 0.02, layers: int = 3, width: int = 32):
    cfg = transformers.GPT2Config(n_layer=layers, n_embd=width, n_head=4, vocab_size=VOCAB, n_positions=SEQ,
                                  initializer_range=init_std, bos_token_id=0, eos_token_id=0,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return transformers.GPT2LMHeadModel(cfg)


def llama(layers: int = 3, width: int = 32):
    cfg = transformers.LlamaConfig(num_hidden_layers=layers, hidden_size=width, intermediate_size=2 * width,
                                   num_attention_heads=4, num_key_value_heads=2, vocab_size=VOCAB,
                                   max_position_embeddings=SEQ, bos_token_id=0, eos_token_id=0,
                                   pad_token_id=0)
    return transformers.LlamaForCausalLM(cfg)


def bert(layers: int = 3, width: int = 32):
    cfg = transformers.BertConfig(num_hidden_layers=layers, hidden_size=width, intermediate_size=2 * width,
                                  num_attention_heads=4, vocab_size=VOCAB, max_position_embeddings=SEQ,
                                  num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                  pad_token_id=0)
    return transformers.BertForSequenceClassification(cfg)


def vit(layers: int = 3):
    cfg = transformers.ViTConfig(num_hidden_layers=layers, hidden_size=32, intermediate_size=64,
                                 num_attention_heads=4, image_size=16, patch_size=4, num_labels=3,
                                 hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return transformers.ViTForImageClassification(cfg)


def resnet():
    cfg = transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[2, 2], layer_type="basic",
                                    num_labels=3, downsample_in_first_stage=False)
    return transformers.ResNetForImageClassification(cfg)


MODELS = {"gpt2": gpt2, "llama": llama, "bert": bert, "vit": vit, "resnet": resnet}
LANGUAGE = ("gpt2", "llama", "bert")


def batch(name: str, seed: int = 0):
    """(input, labels) for a model: token ids for the language models, images for the others."""
    gen = torch.Generator().manual_seed(seed)
    if name in LANGUAGE:
        ids = torch.randint(1, VOCAB, (BATCH, SEQ), generator=gen)
        return ids, (ids if name != "bert" else torch.randint(0, 3, (BATCH,), generator=gen))
    size = 16 if name == "vit" else 32
    return torch.randn(BATCH, 3, size, size, generator=gen), torch.randint(0, 3, (BATCH,), generator=gen)


def loss_of(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return loss_from_logits(name, getattr(out, "logits", out), y)


def loss_from_logits(name: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy for the causal LMs, classification cross-entropy otherwise."""
    if name in ("gpt2", "llama"):
        return nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), y[:, 1:].reshape(-1))
    return nn.functional.cross_entropy(logits.reshape(y.shape[0], -1), y)


def scale_weights(model: nn.Module, factor: float) -> nn.Module:
    """Multiply every weight matrix (and embedding) by ``factor``: the "x10 weights" fault."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                p.mul_(factor)
    return model


def _gpt2_block_without_residuals(self, hidden_states, *args, **kwargs):
    """GPT2Block.forward (transformers 5.x) with both residual sums removed."""
    a = self.attn(self.ln_1(hidden_states), *args[:2], **{k: v for k, v in kwargs.items()
                                                            if k in ("position_ids",)})
    a = a[0] if isinstance(a, tuple) else a
    return self.mlp(self.ln_2(a))


def remove_residuals(model: nn.Module) -> nn.Module:
    """GPT-2 with every block's residual sums removed (the "residuals removed" fault)."""
    for block in model.transformer.h:
        block.forward = types.MethodType(_gpt2_block_without_residuals, block)
    return model


def hidden_states(name: str, model: nn.Module, x: torch.Tensor):
    """The model's own record of its residual stream: HF's ``output_hidden_states`` (the input of
    every layer, then the model's final hidden state), with ``retain_grad`` on each."""
    out = model(x, output_hidden_states=True)
    states = list(out.hidden_states)
    for h in states:
        h.retain_grad()
    return out, states


def norm(t: torch.Tensor) -> float:
    return math.sqrt(float(t.detach().double().square().sum()))
