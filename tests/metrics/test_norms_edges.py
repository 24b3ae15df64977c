"""Edges of resdiag/metrics/norms.py: results are float64 whatever the input (the module's
contract), including the empty and the all-zero tensor."""

import pytest
import torch

from resdiag.metrics.norms import l2_norm, l2_norms


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(0,), (3, 0), (4, 5)])
def test_empty_and_zero_tensors_have_norm_zero_in_float64(dtype, shape):
    for t in (torch.zeros(shape, dtype=dtype), torch.empty(shape, dtype=dtype).fill_(0)):
        n = l2_norm(t)
        assert n.dtype == torch.float64 and n.shape == () and float(n) == 0.0


def test_mixed_dtypes_keep_their_order_and_float64():
    ts = [torch.full((3,), 2.0, dtype=torch.float64), torch.full((4,), 1.5, dtype=torch.float32),
          torch.zeros(0, dtype=torch.float64)]
    got = l2_norms(ts)
    assert [n.dtype for n in got] == [torch.float64] * 3
    assert [float(n) for n in got] == pytest.approx([12**0.5, 9**0.5, 0.0], rel=1e-15)
