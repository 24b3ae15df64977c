"""``named_parameters(modules)``, the Monitor's per-step parameter walk, against torch's own
``named_parameters()``: same names and order, shared parameters once, and the current parameter
when one was replaced after the module list was taken."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from resdiag.probes.layers import named_parameters
from resdiag.zoo import build
from tests.support import ALL_SMALL


def _pairs(named):
    return [(n, id(p)) for n, p in named]


@pytest.mark.parametrize("cfg", ALL_SMALL[::2], ids=lambda c: c.name)
def test_zoo_models_match_torch(cfg):
    model = build(cfg)
    assert _pairs(named_parameters(list(model.named_modules()))) == _pairs(model.named_parameters())


def test_shared_module_tied_weight_and_absent_bias():
    emb = nn.Embedding(10, 4)
    head = nn.Linear(4, 10, bias=False)  # bias registered as None
    head.weight = emb.weight  # tied, as GPT-2's lm_head
    shared = nn.Linear(4, 4)
    model = nn.ModuleDict({"emb": emb, "a": shared, "b": shared, "head": head})
    got = named_parameters(list(model.named_modules()))
    assert _pairs(got) == _pairs(model.named_parameters())
    assert [n for n, _ in got] == ["emb.weight", "a.weight", "a.bias"]


def test_parameter_replaced_after_the_walk_is_read_now():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2))
    modules = list(model.named_modules())
    model[1].weight = nn.Parameter(torch.zeros(2, 3))
    del model[0].bias
    model[0].register_parameter("bias", None)
    got = named_parameters(modules)
    assert _pairs(got) == _pairs(model.named_parameters())
    assert got[1][1] is model[1].weight
