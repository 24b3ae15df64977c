"""Weight gain: how much a matmul scales the variance of its input, from its weights alone.

He et al. 2015 ("Delving Deep into Rectifiers", eq. 10) and Glorot & Bengio 2010 (eq. 12): a layer
y = W x with i.i.d. zero-mean weights and fan-in n keeps Var(y) = n Var(w) Var(x) (times 1/2 after a
ReLU). Variance is preserved when n Var(w) is about 1 (linear, Glorot/LeCun) to 2 (ReLU, He). The
gain of a layer is the square root of that factor, computed with the mean square of the weights
(which is Var(w) for zero-mean weights and also counts a common offset):

    gain(W) = RMS(W) * sqrt(fan_in) = ||W||_F / sqrt(fan_out),

W laid out as the map acts (out x in x kernel...): fan_in = in * prod(kernel) = numel / out.
Pure functions on numbers and tensors; float64 throughout.
"""

from __future__ import annotations

import math
import statistics

import torch


def gain_from_norm(frobenius: float, fan_out: int) -> float:
    """||W||_F / sqrt(fan_out) = RMS(W) * sqrt(fan_in): the layer's weight gain."""
    if fan_out < 1:
        raise ValueError(f"fan_out must be >= 1, got {fan_out}")
    return float(frobenius) / math.sqrt(fan_out)


def weight_gain(matrix: torch.Tensor) -> float:
    """RMS(W) * sqrt(fan_in) of a weight laid out out x in (x kernel), in float64."""
    if matrix.ndim < 2:
        raise ValueError(f"a weight matrix has >= 2 dimensions, got shape {tuple(matrix.shape)}")
    w = matrix.detach().double()
    return gain_from_norm(float(torch.linalg.vector_norm(w)), w.shape[0])


def median_gain(frobenius: list[float], fan_out: list[int]) -> float:
    """The median over layers of ``gain_from_norm``: the typical matmul's gain, robust to the one
    odd layer (a patch embedding, a head). NaN when there is no layer."""
    gains = [gain_from_norm(f, n) for f, n in zip(frobenius, fan_out, strict=True)]
    return statistics.median(gains) if gains else math.nan
