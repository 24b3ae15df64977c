"""GPT-2, Llama, BERT, ViT and ResNet (tiny HF configs, random init) through the probes and the
Monitor: every recorded norm against autograd, intact models without findings, broken ones flagged."""

import math
import pytest
import torch

from resdiag.api import Monitor
from resdiag.probes.features import FeatureProbe
from resdiag.probes.grad import GradientProbe
from resdiag.probes.layers import MATMUL_KINDS, find_blocks, find_layers
from tests.models.support import (
    LANGUAGE,
    MODELS,
    batch,
    gpt2,
    hidden_states,
    loss_from_logits,
    loss_of,
    norm,
    remove_residuals,
)

NAMES = list(MODELS)


def _build(name, seed=0):
    torch.manual_seed(seed)
    model = MODELS[name]().double()
    model.train()
    return model


@pytest.mark.parametrize("name", NAMES)
def test_blocks_are_the_repeated_layers_and_every_matmul_is_a_layer(name):
    model = _build(name)
    blocks = find_blocks(model)
    assert len(blocks) == (4 if name == "resnet" else 3)
    assert len({type(m) for _, m in blocks}) == 1  # no nested match (attention, conv-norm-act)
    layers = find_layers(model)
    params = {id(p) for p in model.parameters() if p.ndim >= 2}
    # Every weight matrix of the model is listed once (HF's ViT/ResNet have no other 2-D params
    # but the ViT's cls token and position table, which are not matmuls).
    listed = {id(layer.weight) for layer in layers}
    assert len(listed) == len(layers)
    unlisted = [n for n, p in model.named_parameters() if p.ndim >= 2 and id(p) not in listed]
    assert all("cls_token" in n or "position_embeddings" in n for n in unlisted), unlisted
    assert params >= listed


@pytest.mark.parametrize("name", NAMES)
def test_probe_norms_equal_autograd(name):
    model = _build(name)
    x, y = batch(name)
    if x.is_floating_point():
        x = x.double()
    with GradientProbe(model) as probe:
        out, states = hidden_states(name, model, x)
        model.zero_grad(set_to_none=True)
        logits = out.logits
        loss_from_logits(name, logits, y).backward()
        step = probe.step()
    want_w = [norm(layer.weight.grad) for layer in probe.layers]
    assert step.weight_grad == pytest.approx(want_w, rel=1e-5)
    # HF records the input of every layer; its last entry is after the final norm (GPT-2, Llama)
    # or the last layer's output (BERT, ViT; ResNet records stage outputs instead).
    if name != "resnet":
        n = len(find_blocks(model))
        assert step.boundary_grad[:n] == pytest.approx([norm(h.grad) for h in states[:n]], rel=1e-5)
        assert len(step.boundary_grad) == n + 1


def test_last_boundary_is_the_last_blocks_output_by_retain_grad():
    model = _build("bert")
    x, y = batch("bert")
    with GradientProbe(model) as probe:
        out, states = hidden_states("bert", model, x)
        loss_from_logits("bert", out.logits, y).backward()
        step = probe.step()
    assert step.boundary_grad == pytest.approx([norm(h.grad) for h in states], rel=1e-5)


def _monitor(model, name, features=True):
    """One recorded step of the Monitor; its weight norms checked against p.grad on the way."""
    monitor = Monitor(model, every=1, features=features)
    x, y = batch(name)
    if x.is_floating_point() and next(model.parameters()).dtype == torch.float64:
        x = x.double()
    with monitor.record(0) as rec:
        loss_of(name, model, x, y).backward()
    layers = find_layers(model)
    got = [la.grad_norm for la in rec.recording.result.layers]
    assert got == pytest.approx([norm(la.weight.grad) for la in layers], rel=1e-5)
    return rec.recording


@pytest.mark.parametrize("name", NAMES)
def test_monitor_intact_models_have_no_findings(name):
    rec = _monitor(_build(name), name)
    assert rec.result.verdict.findings == ()
    assert rec.rank is not None and rec.rank.verdict.findings == ()
    assert rec.result.layers and rec.result.boundaries


def test_bert_autotrainer_reads_its_first_block_not_the_query_projection():
    """BERT at HF's init (std 0.02): layer 0's query projection alone has a gradient ~1e-5 (it is
    proportional to the keys), 5e-5 of the classifier's; per-layer AUTOTRAINER called the intact
    model vanishing. Its first unit is layer 0 as a whole (resdiag.metrics.gradient.unit_norms)."""
    rec = _monitor(_build("bert"), "bert")
    matmuls = [la for la in rec.result.layers if la.kind in MATMUL_KINDS]
    assert matmuls[0].name.endswith("layer.0.attention.self.query")
    assert matmuls[0].grad_norm / matmuls[-1].grad_norm < 1e-3  # what the per-layer rule read
    block0 = [la.grad_norm for la in matmuls if ".layer.0." in la.name]
    want = math.sqrt(sum(g * g for g in block0)) / matmuls[-1].grad_norm
    assert rec.result.summary.weight_first_last_ratio == pytest.approx(want, rel=1e-9)
    assert rec.result.verdict.status == "healthy"


def test_gpt2_at_init_std_1e4_is_vanishing_by_autotrainer():
    torch.manual_seed(0)
    model = gpt2(init_std=1e-4)
    rec = _monitor(model, "gpt2", features=False)
    rules = {f.rule for f in rec.result.verdict.findings}
    assert "autotrainer.vanishing" in rules
    layers = [la for la in rec.result.layers if la.kind in MATMUL_KINDS]
    assert layers[0].name == "transformer.h.0.attn.c_attn" and layers[-1].name == "lm_head"
    assert rec.result.summary.weight_first_last_ratio < 1e-3


def test_gpt2_intact_is_not_vanishing():
    torch.manual_seed(0)
    rec = _monitor(gpt2(), "gpt2", features=False)
    assert rec.result.verdict.findings == ()
    assert rec.result.summary.weight_first_last_ratio > 1e-3


def test_gpt2_without_residuals_collapses_its_tokens():
    from resdiag.diagnosis.tokens import diagnose_tokens

    torch.manual_seed(0)
    model = remove_residuals(gpt2(layers=6))
    x, _ = batch("gpt2")
    with torch.no_grad(), FeatureProbe(model) as probe:
        model(x)
    probe.collect()
    res = [r.token_res for _, _, r in probe.tokens]
    eranks = [r.token_erank_ratio for _, _, r in probe.tokens]
    found = diagnose_tokens(res, eranks, [n for n, _, _ in probe.tokens])
    # Causal attention: token 0 only sees itself, so the tokens never become identical (res stays
    # ~0.05 at 6 layers) but they span ever fewer directions: the erank retention rule fires.
    assert {f.rule for f in found} == {"tokens.retention"}, res
    torch.manual_seed(0)
    intact = gpt2(layers=6)
    with torch.no_grad(), FeatureProbe(intact) as probe:
        intact(x)
    probe.collect()
    assert diagnose_tokens([r.token_res for _, _, r in probe.tokens],
                           [r.token_erank_ratio for _, _, r in probe.tokens],
                           [n for n, _, _ in probe.tokens]) == []


@pytest.mark.parametrize("name", ["gpt2", "llama", "bert", "vit"])
def test_monitor_boundaries_equal_retain_grad_on_hidden_states(name):
    model = _build(name)
    x, y = batch(name)
    x = x.double() if x.is_floating_point() else x
    monitor = Monitor(model, every=1)
    with monitor.record(0) as rec:
        out, states = hidden_states(name, model, x)
        loss_from_logits(name, out.logits, y).backward()
    n = len(monitor.blocks)
    got = [b.grad_norm for b in rec.recording.result.boundaries]
    assert len(got) == n + 1
    assert got[:n] == pytest.approx([norm(h.grad) for h in states[:n]], rel=1e-5)
