"""GradientProbe.step(all_reduce=True) across two processes (gloo, CPU) against torch.autograd.grad
of the full-batch loss in one process: ||dE/dx_l|| of the whole batch, E the mean over all samples."""

import json

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from resdiag.probes.grad import GradientProbe
from resdiag.zoo import build, resolve
from tests.support import reference

CFG = resolve("mlp", 4, width=8, input_shape=(6,), norm="none")  # no BN: halves see the same layers
BATCH = 8


def data():
    gen = torch.Generator().manual_seed(3)
    return (torch.randn(BATCH, 6, generator=gen, dtype=torch.float64),
            torch.randint(0, 10, (BATCH,), generator=gen))


def model():
    torch.manual_seed(0)
    return build(CFG).double()


def _rank(rank, world, init, out):
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        x, y = data()
        half = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
        net = model()
        with GradientProbe(net) as probe:
            torch.nn.functional.cross_entropy(net(x[half]), y[half]).backward()
            step = probe.step(all_reduce=True)
        with open(f"{out}.{rank}", "w") as fh:
            json.dump(step.boundary_grad, fh)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    # Rank 0 runs in this process (so that tools which trace calls in-process, such as the mutation
    # run, see the probe's all-reduce), rank 1 in a fresh one.
    tmp = tmp_path_factory.mktemp("dist")
    args = (2, f"file://{tmp / 'init'}", str(tmp / "norms"))
    other = mp.get_context("spawn").Process(target=_rank, args=(1, *args))
    other.start()
    try:
        _rank(0, *args)
    finally:
        other.join(timeout=120)
    assert other.exitcode == 0
    return [json.loads((tmp / f"norms.{r}").read_text()) for r in range(2)]


def test_all_reduced_boundary_norms_are_the_full_batch_norms(two_ranks):
    x, y = data()
    _, _, want = reference(model(), x, y)
    for got in two_ranks:  # every rank gets the same combined numbers
        assert got == pytest.approx(want, rel=1e-9)


def test_without_a_process_group_all_reduce_changes_nothing():
    x, y = data()
    net = model()
    with GradientProbe(net) as probe:
        torch.nn.functional.cross_entropy(net(x), y).backward()
        step = probe.step(all_reduce=True)
    _, _, want = reference(model(), x, y)
    assert list(step.boundary_grad) == pytest.approx(want, rel=1e-9)


def test_weights_from_is_checked_and_the_error_names_the_value():
    with pytest.raises(ValueError, match=r"^weights_from must be 'hook' or 'grad', got 'both'$"):
        GradientProbe(model(), weights_from="both")


def test_a_step_with_nothing_recorded_is_all_nan_not_an_error():
    net = model()
    with GradientProbe(net) as probe:
        step = probe.step()  # no forward, no backward
    assert len(step.weight_grad) == len(probe.layers) > 0
    assert all(g != g for g in step.weight_grad)  # NaN: not seen
    assert step.boundary_grad == () and not any(step.weight_seen)
