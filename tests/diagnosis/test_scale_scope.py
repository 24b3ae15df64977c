"""The weight-scale rule speaks about initialisations only (He et al. 2015; Glorot & Bengio 2010):
applied to freshly built weights and the Monitor's step 0; not to a loaded checkpoint or to the
Monitor's later steps, where trained weights may lawfully be larger (docs/gradflow.md)."""

from __future__ import annotations

import torch
from torch import nn

from resdiag.api import Monitor
from resdiag.run.gradflow import run_grad_flow
from resdiag.run.target import TargetSpec
from resdiag.zoo import build, resolve
from tests.models.support import scale_weights


def _cfg():
    return resolve("transformer", depth=4, placement="preln", input_shape=(8,))


def _rules(result) -> set[str]:
    return {f.rule for f in result.verdict.findings}


def test_fresh_weights_are_judged_and_a_checkpoint_is_not(tmp_path):
    torch.manual_seed(0)
    model = scale_weights(build(_cfg()), 10.0)
    path = tmp_path / "x10.pt"
    torch.save(model.state_dict(), path)
    fresh = run_grad_flow(TargetSpec(module=model, inputs=_inputs()), batches=1, batch_size=8, device="cpu")
    loaded = run_grad_flow(TargetSpec(arch=_cfg(), checkpoint=path), batches=1, batch_size=8, device="cpu")
    assert "scale.gain" in _rules(fresh)
    assert loaded.summary.weight_gain_median == fresh.summary.weight_gain_median  # measured still
    assert "scale.gain" not in _rules(loaded)


def test_monitor_judges_step_0_only():
    torch.manual_seed(0)
    cfg = _cfg()
    model = scale_weights(build(cfg), 10.0)
    x = torch.randint(0, cfg.vocab_size, (8, 8))
    y = torch.randint(0, cfg.num_classes, (8,))
    monitor = Monitor(model, every=1)
    for step in (0, 1):
        with monitor.record(step):
            nn.functional.cross_entropy(model(x), y).backward()
        model.zero_grad(set_to_none=True)
    first, second = monitor.history
    assert "scale.gain" in _rules(first.result)
    assert "scale.gain" not in _rules(second.result)
    assert second.result.summary.weight_gain_median > 2


def _inputs():
    from resdiag.run.inputs import InputSpec

    return InputSpec(kind="tokens", seq_len=8, vocab=_cfg().vocab_size)
