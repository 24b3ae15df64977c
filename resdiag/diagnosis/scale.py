"""The weight-scale rule: the typical matmul scales the variance of its input far beyond what keeps
it (docs/gradflow.md, "Weight scale").

``scale.gain``  median over the matmuls of gain = RMS(W) * sqrt(fan_in) > ``gain_max`` (2)
                -> "exploding".
He et al. 2015 ("Delving Deep into Rectifiers", eq. 10) and Glorot & Bengio 2010 (eq. 12): a layer
y = W x keeps Var(y) = n Var(w) Var(x), n the fan-in (times 1/2 after a ReLU), so n Var(w) = 1
(linear) to 2 (ReLU) preserves the forward variance; gain^2 = n Var(w). Above gain 2 the typical layer
multiplies its input's variance by more than 4, at least twice the largest preserving factor: without
normalisation the forward signal, and the gradient with it, grows geometrically with depth; with
normalisation (LayerNorm/BatchNorm undo the scale in the stream) the attention logits and the output
logits grow by gain^2 per query-key product or head, which saturates softmax (Zhai et al. 2023,
"Stabilizing Transformer Training by Preventing Attention Entropy Collapse") and the gradients scale
by 1/gain through every normalised layer (van Laarhoven 2017, "L2 Regularization versus Batch and
Weight Normalization": the effective learning rate falls as 1/||W||^2).

The rule reads the weights as they are: it is a statement about an initialisation (the papers'),
calibrated at initialisation and after a few hundred training steps (docs/gradflow.md has the figures
and the margins). Embeddings are left out: their scale conventions differ (N(0, 1) in Vaswani et al.
2017's scaled form, N(0, 0.02^2) in GPT-2) and they are not matmuls on the residual stream.
"""

from __future__ import annotations

import math

from resdiag.diagnosis.thresholds import GradThresholds
from resdiag.results import Finding

HE2015 = ("He et al. 2015, Delving Deep into Rectifiers, eq. 10; Glorot & Bengio 2010, eq. 12: "
          "n Var(w) = 1 to 2 preserves the forward variance")


def weight_scale(gain_median: float, t: GradThresholds = GradThresholds()) -> list[Finding]:
    """``scale.gain`` when the median matmul gain is above ``t.gain_max``; nothing when it is not, or
    when there is no matmul (NaN: ``evidence.weights`` says so)."""
    if not math.isfinite(gain_median) or gain_median <= t.gain_max:
        return []
    return [Finding("scale.gain", "exploding", gain_median, t.gain_max,
                    f"median matmul weight gain RMS(W)*sqrt(fan_in) = {gain_median:.3g} > {t.gain_max:g}: "
                    f"the typical layer multiplies its input's variance by {gain_median ** 2:.3g} "
                    "(1 to 2 preserves it)", HE2015)]
