"""Shared test problems for the spine: ``module:callable`` factories the CLI imports
(``--model tests.run.factories:NAME``, run from the repository root) and the Python API builds.

The HuggingFace models are tiny configs with random init (never ``from_pretrained``: no weights
are downloadable here) and dropout 0, so a forward is a function of the weights and the ids.
"""

from __future__ import annotations

import torch
from torch import nn

VOCAB, WIDTH, LAYERS = 97, 32, 2


def linear_net() -> nn.Module:
    """Randomly initialised on every call: the numbers depend on the seed set before it."""
    return nn.Sequential(nn.Flatten(), nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 5))


class _Head(nn.Module):
    def __init__(self, out: int = 5):
        super().__init__()
        self.fc = nn.Linear(8, out)


class OneLogit(_Head):
    def __init__(self):
        super().__init__(out=1)

    def forward(self, x):
        return self.fc(x)


class NoGrad(_Head):
    def forward(self, x):
        with torch.no_grad():
            return self.fc(x)


class IntegerLogits(_Head):
    def forward(self, x):
        return self.fc(x).round().long()


class DictOutput(_Head):
    def forward(self, x):
        return {"hidden": x, "logits": self.fc(x)}


class TupleOutput(_Head):
    def forward(self, x):
        return self.fc(x), x


class TinyLM(nn.Module):
    """An embedding, one linear block and a vocabulary head: (batch, T) ids -> (batch, T, V) logits."""

    def __init__(self, vocab: int = VOCAB):
        super().__init__()
        self.embed = nn.Embedding(vocab, WIDTH)
        self.mix = nn.Linear(WIDTH, WIDTH)
        self.head = nn.Linear(WIDTH, vocab)

    def forward(self, ids):
        h = self.embed(ids)
        h = h + torch.tanh(self.mix(h))
        return self.head(h)


def one_logit() -> nn.Module:
    return OneLogit()


def no_grad() -> nn.Module:
    return NoGrad()


def integer_logits() -> nn.Module:
    return IntegerLogits()


def dict_output() -> nn.Module:
    return DictOutput()


def tuple_output() -> nn.Module:
    return TupleOutput()


def tiny_lm() -> nn.Module:
    return TinyLM()


def gpt2() -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=WIDTH, n_layer=LAYERS,
                                      n_head=2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                      bos_token_id=0, eos_token_id=0))


def llama() -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=WIDTH, intermediate_size=64,
                                        num_hidden_layers=LAYERS, num_attention_heads=2,
                                        num_key_value_heads=2, max_position_embeddings=64))


def bert() -> nn.Module:
    from transformers import BertConfig, BertForMaskedLM

    return BertForMaskedLM(BertConfig(vocab_size=VOCAB, hidden_size=WIDTH, num_hidden_layers=LAYERS,
                                      num_attention_heads=2, intermediate_size=64,
                                      max_position_embeddings=64, hidden_dropout_prob=0.0,
                                      attention_probs_dropout_prob=0.0))


HF = ("gpt2", "llama", "bert")


# --- models that misbehave around the run, not in their numbers (tests/test_process_faults.py) ---

class _Chatty(nn.Sequential):
    def forward(self, x):
        print("user model: forward")  # what a user's debugging print does to stdout
        return super().forward(x)


def chatty() -> nn.Module:
    """Prints when built and on every forward (input shape 8)."""
    print("user model: built")
    return _Chatty(nn.Flatten(), nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 5))


def threaded() -> nn.Module:
    """Starts a non-daemon thread that outlives the run (a data loader or logger left running)."""
    import threading
    import time

    threading.Thread(target=time.sleep, args=(600,), daemon=False).start()
    return linear_net()


class _Sleepy(nn.Sequential):
    def forward(self, x):
        import time

        time.sleep(0.5)  # a run long enough to be interrupted in the middle
        return super().forward(x)


def sleepy() -> nn.Module:
    return _Sleepy(nn.Flatten(), nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 5))
