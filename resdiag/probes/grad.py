"""The gradient probe: per-layer weight-gradient norms and per-boundary activation-gradient norms.

Usage::

    with GradientProbe(model) as probe:
        for x, y in batches:
            loss_fn(model(x), y).backward()
            probe.step()                 # one host sync per step, never one per layer
            model.zero_grad(set_to_none=True)
    probe.steps                          # list[GradStep]

Weight gradients are read by hooks on the parameters (``Tensor.register_hook``), so each step sees
the gradient of its own backward even when ``.grad`` accumulates, and a weight shared by two
layers is counted once, with its total gradient. The hook only keeps a reference; ``step`` takes
all their norms in one fused call (``torch._foreach_norm``, as ``clip_grad_norm_`` does).
Activation gradients dE/dx_l are read by tensor hooks placed, during the forward pass, on the
input of every block and on the output of the last; the hooks keep the gradients and their norms
are taken in fused batches (``PendingNorms``: at most 64 MiB held), so no kernel is launched per
boundary inside the backward pass. ``grad-flow``, which runs its own loop, reads the same gradients
without any hook: ``own_backward`` and ``GradientProbe.backward``. Norms are L2 norms of the
flattened tensor (the Frobenius norm) from ``resdiag.metrics.norms``: float64 accumulation (float64
tensors: exact power-of-two scaling), so a gradient that is non-zero in its own dtype never reads as
0 or inf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.autograd.graph import GradientEdge

from resdiag.errors import ResdiagError
from resdiag.metrics.norms import all_reduce_norms, l2_norms
from resdiag.model_output import split_output
from resdiag.probes.boundaries import (BoundaryHooks, PendingNorms, edge_hook, has_reentrant_checkpoint,
                                       in_backward, keep_boundaries, renumber, zero_if_unreached)
from resdiag.probes.layers import Layer, find_blocks, find_layers


@dataclass(frozen=True)
class GradStep:
    """One recorded backward pass. NaN marks a layer or boundary that received no gradient."""

    weight_grad: tuple[float, ...]  # ||dE/dW|| per layer, in ``GradientProbe.layers`` order
    weight_seen: tuple[bool, ...]  # whether the layer received a gradient in this step
    boundary_grad: tuple[float, ...]  # ||dE/dx_l|| for l = 0..L, in forward order
    boundary_shapes: tuple[tuple[int, ...], ...]
    boundary_names: tuple[str, ...]
    output_grad: float = math.nan  # ||dE/d output|| of the model's (first tensor) output; NaN if none
    weight_trainable: tuple[bool, ...] = ()  # whether each layer's weight requires grad (else frozen)
    inert_boundaries: int = 0  # block boundaries skipped: their tensor did not require grad (frozen)


class GradientProbe(BoundaryHooks):
    """Records gradient norms of ``model`` while the context is open; removes every hook on exit."""

    def __init__(
        self,
        model: nn.Module,
        layers: list[Layer] | None = None,
        blocks: list[tuple[str, nn.Module]] | None = None,
        weights_from: str = "hook",
        own_backward: bool = False,
    ):
        """``weights_from``: "hook" reads each backward's own weight gradient (default); "grad"
        reads ``.grad`` at ``step()``, i.e. after DistributedDataParallel has all-reduced it.
        ``own_backward``: the caller runs every backward through ``backward(loss)`` (see there), not
        ``loss.backward()``; the weight gradients come from it."""
        if weights_from not in ("hook", "grad"):
            raise ValueError(f"weights_from must be 'hook' or 'grad', got {weights_from!r}")
        if own_backward and weights_from != "grad":
            raise ValueError("own_backward reads the weight gradients itself: use weights_from='grad'")
        self.own_backward = own_backward
        self._watched: list[tuple] = []  # own_backward: (GradientEdge or leaf tensor, bytes, sink)
        self._reentrant: bool | None = None  # own_backward: a reentrant checkpoint in the graph
        self._from_backward = False  # this step's weight gradients came from backward()
        self._reached: set[int] = set()  # this step's model calls that a backward reached
        self._inert: set[str] = set()  # this step's block boundaries that did not require grad
        super().__init__(find_blocks(model) if blocks is None else blocks)
        self.weights_from = weights_from
        self.model = model
        self.layers = find_layers(model) if layers is None else layers
        self.steps: list[GradStep] = []
        self.weight_norms: tuple[float, ...] = ()
        self._wgrad: list[torch.Tensor | None] = []  # this step's gradient of each weight
        self._bgrad: list[torch.Tensor | None] = []
        self._bmeta: list[tuple[str, tuple[int, ...], int]] = []  # label, shape, model call
        self._ograd: torch.Tensor | None = None
        self._pending = PendingNorms()

    def _install(self) -> None:
        with torch.no_grad():
            norms = l2_norms([layer.weight for layer in self.layers])
            self.weight_norms = tuple(torch.stack(norms).cpu().tolist()) if norms else ()
        self._wgrad = [None] * len(self.layers)
        self._install_root_hooks()
        for i, layer in enumerate(self.layers):
            if layer.weight.requires_grad and self.weights_from == "hook":
                self._handles.append(layer.weight.register_hook(self._weight_hook(i)))

    def close(self) -> None:
        """Remove every hook and drop what a step never closed holds (gradients, graph nodes)."""
        super().close()
        self._pending, self._watched, self._wgrad = PendingNorms(), [], [None] * len(self.layers)

    _root_grad = True  # whether the model's forward now running (or last run) is no evaluation

    def _install_root_hooks(self) -> None:
        """Whether the model's forward is an evaluation (``_active``); its output, also on a raise."""
        def pre(module, args, kwargs) -> None:  # autograd off: an evaluation, unless an input
            inputs = (*args, *kwargs.values())  # requires grad (a reentrant checkpoint around it)
            self._root_grad = torch.is_grad_enabled() or any(getattr(t, "requires_grad", False)
                                                             for t in inputs)

        def post(module, args, output) -> None:
            self._root_grad = True
            self._output_hook(module, args, output)

        self._handles.append(self.model.register_forward_pre_hook(pre, with_kwargs=True))
        self._handles.append(self.model.register_forward_hook(post, always_call=True))
        self._install_call_hooks(self.model)

    def _active(self) -> bool:
        """Not in a forward of the whole model under no_grad (an evaluation: no gradient to read)."""
        return self._root_grad or in_backward()

    def _weight_hook(self, i: int):
        def hook(grad: torch.Tensor) -> None:
            self._wgrad[i] = grad.detach()

        return hook

    def _on_boundary(self, tensor, label: str) -> None:
        """Activation checkpointing: a block recomputed in backward is no new boundary. Under a
        reentrant checkpoint the first forward runs without autograd; such a boundary is hooked on
        the recomputation, the last one waiting first (backward recomputes in reverse order)."""
        if not isinstance(tensor, torch.Tensor):
            return
        key = label.split("#")[0]
        if in_backward():
            waiting = self._recomputed(key, tensor)
            if waiting is not None:
                _, sink = waiting
                tensor.register_hook(lambda grad: self._pending.add(grad, sink))
            return
        if not tensor.requires_grad and torch.is_grad_enabled():
            self._inert.add(label)  # nothing upstream requires grad (a frozen part): no boundary
            return
        slot = len(self._bgrad)
        self._bgrad.append(None)
        self._bmeta.append((label, tuple(tensor.shape), self._call))

        def sink(norm: torch.Tensor) -> None:
            self._bgrad[slot] = norm

        if tensor.requires_grad:
            self._watch(tensor, sink)
        else:  # inside a reentrant checkpoint (or a no_grad region: never recomputed, dropped)
            self._await_recompute(key, (slot, sink))

    def _watch(self, tensor: torch.Tensor, sink) -> None:
        """Read dE/d``tensor`` in this step's backward and hand its norm to ``sink``."""
        if self.own_backward:  # differentiated by backward() where a hook would sit, at its node
            node = tensor.grad_fn
            where = tensor if node is None else GradientEdge(node, tensor.output_nr)
            self._watched.append((where, tensor.numel() * tensor.element_size(), sink))
        else:
            tensor.register_hook(lambda grad: self._pending.add(grad, sink))

    def _output_hook(self, module, args, output) -> None:
        """||dE/d output||: tells a loss that is flat in the output (nothing to judge) from a
        network that passes no gradient back from its output (vanishing)."""
        out = split_output(output)[0]
        if out is not None and out.requires_grad:
            call = self._call

            def sink(norm: torch.Tensor) -> None:
                self._ograd = norm
                self._reached.add(call)

            self._watch(out, sink)

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()`` for a probe made with ``own_backward`` (``grad-flow`` runs its own loop):
        one ``torch.autograd.grad`` call returns the gradients of the layer weights and of every
        boundary recorded in the forward pass, with no Python inside the backward pass (a hook per
        boundary costs more host time than anything else the probe does: docs/gradflow.md). The same
        gradients as the hooks': each boundary is differentiated at the node that made it (its
        ``GradientEdge``), as a hook sits there, so one modified in place later still gives the
        gradient of the value it had when recorded. ``.grad`` is left untouched. It holds every boundary's
        gradient to the end of the backward pass, so above 512 MiB of them, and with a reentrant
        activation checkpoint in the graph (which ``torch.autograd.grad`` cannot run), it places the
        hooks now and calls ``loss.backward()``."""
        if self._from_backward:
            raise RuntimeError("backward() runs once per step: call step() after it")
        watched, self._watched = self._watched, []
        if self._reentrant is None:  # the same model and code on every step: looked for once
            self._reentrant = has_reentrant_checkpoint(loss)
        if self._reentrant or sum(size for _, size, _ in watched) > _HOLD_BYTES:
            for where, _, sink in watched:
                edge_hook(where, lambda grad, sink=sink: self._pending.add(grad, sink))
            loss.backward()
            return
        rows = [i for i, layer in enumerate(self.layers) if layer.weight.requires_grad]
        inputs = [self.layers[i].weight for i in rows] + [where for where, _, _ in watched]
        try:
            grads = list(torch.autograd.grad(loss, inputs, allow_unused=True)) if inputs else []
        except RuntimeError as exc:  # a reentrant checkpoint not named as torch's: no retry (graph used)
            if "reentrant" not in str(exc):
                raise
            message = str(exc).splitlines()[0]
            raise ResdiagError(f"{message} (a reentrant checkpoint resdiag did not find)") from None
        self._wgrad = [None] * len(self.layers)
        for i, grad in zip(rows, grads, strict=False):
            self._wgrad[i] = grad
        # last recorded first, as backward fires hooks (a model called twice: its first output's)
        for (*_, sink), grad in reversed(list(zip(watched, grads[len(rows):], strict=True))):
            if grad is not None:  # None: the loss does not depend on it, as a hook that never fires
                self._pending.add(grad, sink)
        self._from_backward = True

    # -- steps -------------------------------------------------------------------------------
    def step(self, all_reduce: bool = False) -> GradStep:
        """Close one forward+backward: move this step's norms to the host in one sync.

        ``all_reduce`` (under an initialised torch.distributed with several processes): combine
        the activation-gradient norms of all ranks into those of the global batch,
        sqrt(sum_r ||g_r||^2) / world_size (DDP averages the ranks' gradients), so that every rank
        holds the same numbers. Weight gradients should then come from ``weights_from="grad"``."""
        if self.ambiguous:
            keys, self.ambiguous = sorted(self.ambiguous), set()
            self.close()
            raise ResdiagError(f"{', '.join(keys)}: a block called more than once inside one reentrant "
                               "activation checkpoint, whose calls resdiag cannot tell apart; checkpoint "
                               "with use_reentrant=False, or each call separately")
        pending, sinks = self._pending.take()
        if self.weights_from == "grad" and not self._from_backward:
            self._wgrad = [layer.weight.grad for layer in self.layers]
        seen = [g is not None for g in self._wgrad]
        # the activation and the weight gradients in one fused call (per dtype)
        norms = l2_norms(pending + [g for g in self._wgrad if g is not None])
        for sink, norm in zip(sinks, norms, strict=False):
            sink(norm)
        never = {slot for waiting in self._recompute.values() for slot, _ in waiting}  # not recomputed
        reached = self._reached | {call for (*_, call), g in zip(self._bmeta, self._bgrad, strict=True)
                                   if g is not None}
        keep = [i for i, (*_, call) in enumerate(self._bmeta) if i not in never and call in reached]
        labels = renumber([self._bmeta[i][0] for i in keep])
        kept = keep_boundaries(labels) if keep else []
        self._bgrad = [self._bgrad[keep[i]] for i in kept]
        self._bmeta = [(labels[i], self._bmeta[keep[i]][1]) for i in kept]
        wnorms = iter(norms[len(pending):])
        wnorms = [next(wnorms) if ok else None for ok in seen]
        activation = [*zero_if_unreached(self._bgrad, [*wnorms, self._ograd]), self._ograd]
        if all_reduce:
            activation = all_reduce_norms(activation)
        device_values = [v for v in (*wnorms, *activation) if v is not None]
        host = iter(torch.stack(device_values).cpu().tolist() if device_values else [])
        values = [math.nan if v is None else next(host) for v in (*wnorms, *activation)]
        n = len(self._wgrad)
        step = GradStep(
            weight_grad=tuple(values[:n]),
            weight_seen=tuple(seen),
            boundary_grad=tuple(values[n:-1]),
            boundary_shapes=tuple(shape for _, shape in self._bmeta),
            boundary_names=tuple(label for label, _ in self._bmeta),
            output_grad=values[-1],
            weight_trainable=tuple(layer.weight.requires_grad for layer in self.layers),
            inert_boundaries=len(self._inert),
        )
        self.steps.append(step)
        self._wgrad = [None] * len(self.layers)
        self._bgrad, self._bmeta, self._calls, self._ograd = [], [], {}, None
        self._call, self._reached, self._inert = 0, set(), set()
        self._watched, self._from_backward, self._recompute, self._segment = [], False, {}, {}
        return step


_HOLD_BYTES = 512 << 20  # boundary gradients backward() holds at once; above it, hooks and batches

