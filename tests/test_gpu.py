"""CUDA checks (marker ``gpu``): skipped where torch sees no GPU (CI); on a GPU machine they run in
the default suite, and `pytest -m gpu` runs only them."""

import pytest
import torch

from resdiag.probes.features import FeatureProbe
from resdiag.probes.grad import GradientProbe
from resdiag.run.gradflow import run_grad_flow
from resdiag.run.rank import run_rank
from resdiag.run.target import TargetSpec
from resdiag.zoo import build, resolve

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def tiny():
    return resolve("resnet8", width=0.5, input_shape=(3, 16, 16))


def test_grad_flow_cuda_matches_cpu():
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    cpu = run_grad_flow(TargetSpec(arch=tiny()), batches=2, batch_size=8, device="cpu")
    gpu = run_grad_flow(TargetSpec(arch=tiny()), batches=2, batch_size=8, device="cuda")
    assert gpu.run.device.startswith("cuda")
    for a, b in zip(cpu.layers + cpu.boundaries, gpu.layers + gpu.boundaries, strict=True):
        assert b.grad_norm == pytest.approx(a.grad_norm, rel=1e-3)


def test_rank_cuda_matches_cpu():
    cpu = run_rank(TargetSpec(arch=tiny()), batch_size=32, device="cpu")
    gpu = run_rank(TargetSpec(arch=tiny()), batch_size=32, device="cuda")
    for a, b in zip(cpu.features, gpu.features, strict=True):
        assert b.erank == pytest.approx(a.erank, rel=1e-3)
    for a, b in zip(cpu.weights, gpu.weights, strict=True):
        assert b.stable_rank == pytest.approx(a.stable_rank, rel=1e-4)


def test_probes_do_not_sync_inside_the_step():
    """Hooks keep their numbers on the device: no host sync until probe.step()/collect()."""
    model = build(tiny()).cuda()
    x = torch.randn(8, 3, 16, 16, device="cuda")
    y = torch.randint(0, 10, (8,), device="cuda")
    with GradientProbe(model) as probe:
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            torch.nn.functional.cross_entropy(model(x), y).backward()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        probe.step()
    with torch.no_grad(), FeatureProbe(model) as fprobe:
        torch.cuda.set_sync_debug_mode("error")
        try:
            model(x)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        fprobe.collect()
    assert len(fprobe.boundaries) == 4


def test_monitor_recorded_step_matches_cpu_with_one_host_sync():
    """The Monitor on CUDA: the same numbers as on the CPU, and one device-to-host sync per
    recorded step (counted by torch's sync debug mode) once the forward and backward are done."""
    import warnings

    from resdiag.api import Monitor

    def run(device):
        torch.manual_seed(0)
        model = build(tiny()).to(device)
        x = torch.randn(8, 3, 16, 16).to(device)  # drawn on the CPU: the same batch on both
        y = torch.randint(0, 10, (8,)).to(device)
        monitor = Monitor(model, every=1)
        monitor.begin(0)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                rec = monitor.end()
        finally:
            if device == "cuda":
                torch.cuda.set_sync_debug_mode("default")
        syncs = [w for w in caught if "synchroniz" in str(w.message)]
        return rec, syncs

    torch.backends.cudnn.allow_tf32 = False
    cpu, _ = run("cpu")
    gpu, syncs = run("cuda")
    assert len(syncs) == 1, [str(w.message) for w in syncs]
    assert gpu.param_norms.keys() == cpu.param_norms.keys()
    for name, v in cpu.param_norms.items():
        assert gpu.param_norms[name] == pytest.approx(v, rel=1e-3), name
    for a, b in zip(cpu.result.boundaries, gpu.result.boundaries, strict=True):
        assert b.grad_norm == pytest.approx(a.grad_norm, rel=1e-3)
