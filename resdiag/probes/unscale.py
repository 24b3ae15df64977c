"""Loss scaling and the step's one host copy: which gradients still hold a GradScaler's scale, and
``to_host``, which moves every norm and the scale to the host together and divides it out there."""

from __future__ import annotations

import math

import torch


def loss_scale(scaler, optimizers=None) -> tuple[torch.Tensor | None, bool | dict]:
    """The loss scale of a ``torch.amp.GradScaler`` for this step's backward (read before
    ``update()``), as a device tensor, and whether ``.grad`` still holds scaled values: False once
    ``unscale_`` has run (Lightning and HF Trainer do before their hooks). With ``optimizers``
    (one scaler for several, as in torch's AMP examples), per parameter of theirs: {id: scaled}."""
    if scaler is None or not scaler.is_enabled() or getattr(scaler, "_scale", None) is None:
        return None, True
    from torch.amp.grad_scaler import OptState

    states = getattr(scaler, "_per_optimizer_states", {})
    # unscale_ (UNSCALED) or scaler.step (STEPPED, which unscales first) has divided .grad already
    unscaled = any(s.get("stage") is not OptState.READY for s in states.values())
    if optimizers is None:
        return scaler._scale.detach().double(), not unscaled
    scaled: dict = {None: not unscaled}
    for opt in optimizers if isinstance(optimizers, (list, tuple)) else [optimizers]:
        # the optimizer the scaler saw: a framework's wrapper (Lightning, accelerate) holds it
        seen = [o for o in (opt, getattr(opt, "optimizer", None), getattr(opt, "_optimizer", None))
                if o is not None and id(o) in states]
        still = not seen or states[id(seen[0])].get("stage") is OptState.READY
        scaled |= {id(p): still for group in opt.param_groups for p in group["params"]}
    return scaler._scale.detach().double(), scaled


def to_host(gnorms, wnorms, activation, scale, weights_scaled, read: dict | None = None) -> list[float]:
    """One host copy (the step's one sync) of every norm and of the loss scale; on the host, the
    gradient norms divided by the scale (the weight gradients only while ``.grad`` still holds
    scaled values: ``weights_scaled``, one flag or one per gradient), the same IEEE float64
    division the device would make; NaN where absent."""
    groups = (gnorms, wnorms, activation)
    present = [v for values in groups for v in values if v is not None]
    if not present:
        return [math.nan] * (len(gnorms) + len(wnorms) + len(activation))
    if scale is not None:
        present.append(torch.as_tensor(scale, dtype=torch.float64).to(present[0].device).reshape(()))
    host = torch.stack(present).cpu().tolist()
    divisor = host.pop() if scale is not None else None
    if read is not None and divisor is not None:
        read["scale"] = divisor  # the scale as this one copy read it: no second sync for it
    per = weights_scaled if isinstance(weights_scaled, list) else [weights_scaled] * len(gnorms)
    divide = [*per, *[False] * len(wnorms), *[True] * len(activation)]
    values = iter(host)
    out: list[float] = []
    for v, div in zip((*gnorms, *wnorms, *activation), divide, strict=True):
        if v is None:
            out.append(math.nan)
        else:
            out.append(_divide(next(values), divisor) if div and divisor is not None else next(values))
    return out


def _divide(a: float, b: float) -> float:
    """a / b as IEEE float64 division gives it (x/0 is inf, 0/0 and NaN/0 NaN), without Python's
    ZeroDivisionError."""
    try:
        return a / b
    except ZeroDivisionError:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1.0, b)
