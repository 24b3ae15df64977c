"""The probe of one optimizer step of a real training job (the Monitor's; docs/api.md, "Training stacks").

What it adds to ``GradientProbe``:

- **Gradient accumulation.** Weight rows are read once, from ``.grad``, when the step closes: the
  gradient the optimizer applies, whatever the number of micro-batches. A forward boundary call
  that follows a backward starts a new micro-batch; boundary l of the step is

      ||dE/dx_l|| = sqrt( sum_m ||dE/dx_l^(m)||^2 )          (m = the step's micro-batches)

  i.e. the norm of the activation gradient of the whole step's batch (the concatenation of the
  micro-batches). When each micro-batch loss is divided by the number of micro-batches (the usual
  accumulation recipe), this is exactly the norm the same batch gives in one backward.
- **Activation checkpointing.** A block call made while autograd runs a backward
  (``torch._C._current_graph_task_id() != -1``) is a recomputation (torch.utils.checkpoint,
  reentrant or not; HF ``gradient_checkpointing_enable``): it adds no boundary. The one exception is
  a boundary the first pass could not hook because it ran without autograd (the output of a block
  inside a reentrant checkpoint): its recomputed tensor carries the same gradient and is hooked.
- **Loss scaling.** ``step(scale=S, weights_scaled=...)`` divides the norms by the loss scale S of
  a ``torch.amp.GradScaler`` (the weight rows only while ``.grad`` still holds scaled values).
- **Sharded parameters.** A DTensor gradient (FSDP2 ``fully_shard``) is reduced over its mesh:
  ||g|| = sqrt(sum over shards ||g_shard||^2); a replicated one is read locally. Under FSDP1
  (``FullyShardedDataParallel(use_orig_params=True)``) each rank holds a slice of every
  parameter's flattened gradient: the same sum, over the ranks' slices.
"""

from __future__ import annotations

import math
import warnings
import weakref

import torch
from torch import nn

from resdiag.metrics.norms import all_reduce_norms, l2_norm, l2_norms
from resdiag.probes.boundaries import (in_backward, keep_boundaries, output_to_hook, renumber,
                                       zero_if_unreached)
from resdiag.probes.grad import GradientProbe, GradStep
from resdiag.probes.layers import Layer, named_parameters, unwrap
from resdiag.probes.sharded import dtensor_class, flat_sharded, flat_sharded_norms, grad_norms
from resdiag.probes.unscale import to_host

_OUTPUT = "<output>"  # the label under which ||dE/d output|| is kept


class StepProbe(GradientProbe):
    """Records one optimizer step: any number of micro-batches, checkpointing, scaled and sharded
    gradients. Weight gradients always come from ``.grad`` when the step closes."""

    def __init__(self, model: nn.Module, blocks: list[tuple[str, nn.Module]] | None = None,
                 layers: list[Layer] | None = None, modules: list[tuple[str, nn.Module]] | None = None):
        """``modules``: ``unwrap(model).named_modules()`` as the caller just read them (the Monitor,
        when the step opens); else they are read when the step closes."""
        super().__init__(model, layers=layers, blocks=blocks, weights_from="grad")
        self._modules = modules
        Entry = tuple[int, int, str]  # (model call, micro-batch, label): one boundary of one call
        self._norms: dict[Entry, list[torch.Tensor]] = {}  # its norm(s); the output's under _OUTPUT
        self._entries: list[Entry] = []  # in forward order
        self._shape: dict[Entry, tuple[int, ...]] = {}
        self._backward_seen = False
        self._live: set[Entry] = set()  # hooked (in forward, or on a recomputation)
        # Which backward passes train: those that accumulate into a layer weight's .grad (a post-
        # accumulate hook sees them), not an autograd.grad() call (a gradient penalty, a PINN's
        # du/dx), whose tensor hooks fire too. Sharded weights are reduced into .grad by FSDP,
        # outside any such hook: there every backward counts, and .grad is read as it is.
        dist = torch.distributed
        distributed = dist.is_available() and dist.is_initialized()
        dtensor = dtensor_class() if distributed else None  # DTensors live in a process group
        self._tracked = not flat_sharded(model) and not (
            dtensor is not None and any(isinstance(layer.weight, dtensor) for layer in self.layers))
        # id(param) -> (micro-batch, its .grad (weak), ._version) after its last accumulation: an
        # accumulation adds to the same tensor in place (version + 1); anything else between two of
        # them (zero_grad: set to None, or zero_(); DDP's bucket copies, so not distributed) is
        # a reset, after which the step is the passes since (an LBFGS closure, SAM's second pass)
        self._acc: dict[int, tuple[int, weakref.ref, int]] = {}
        self._tasks: set[int] = set()  # the autograd graph tasks that accumulated
        self._distributed = distributed  # DDP writes .grad itself: no reset can be told there
        self._reset_at = 0  # the micro-batches before this one were reset
        self._hooked = 0  # parameters with a post-accumulate hook
        self._stepped = False  # an optimizer stepped after the last accumulation, inside the record
        self.loss_scale_value = 1.0  # the loss scale divided out, as read in the step's one sync
        self.micro_batches = 0
        self.param_grad_norms: dict[str, float] = {}  # ||.grad|| by parameter name, set by step()

    def _install(self) -> None:
        self._install_root_hooks()
        if self._tracked:  # the layer weights: the rows, and enough to tell a training backward
            params = {id(w): w for w in (layer.weight for layer in self.layers)}
            for p in params.values():
                if p.requires_grad and p.is_leaf:
                    self._handles.append(p.register_post_accumulate_grad_hook(self._accumulate))
                    self._hooked += 1
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self._handles.append(register_optimizer_step_post_hook(self._optimizer_stepped))

    def _optimizer_stepped(self, *args) -> None:
        self._stepped = True

    def _accumulate(self, param: torch.Tensor) -> None:
        g, prev = param.grad, self._acc.get(id(param))
        if (prev is not None and not self._distributed and not torch.is_grad_enabled()  # create_graph: a copy
                and (prev[1]() is not g or g._version != prev[2] + 1)):
            self._reset_at = max(self._reset_at, self.micro_batches)
        self._acc[id(param)] = (self.micro_batches, weakref.ref(g), g._version)
        self._tasks.add(torch._C._current_graph_task_id())
        self._backward_seen = True  # a forward after this starts a new micro-batch
        self._stepped = False

    def _since_backward(self, param: torch.Tensor) -> str:
        """What became of ``param``'s .grad since this step's last accumulation into it: "none"
        (never accumulated, or before a reset), "kept", or "changed" (unscale_, clipping, zeroing)."""
        acc = self._acc.get(id(param))
        if acc is None or acc[0] < self._reset_at:
            return "none"
        g = param.grad
        return "kept" if acc[1]() is g and g is not None and g._version == acc[2] else "changed"

    def _label(self, name: str, where: str) -> str:
        if in_backward():
            return f"{name}:{where}"  # a recomputation: matched to a pending label in _on_boundary
        if self._backward_seen or self.micro_batches == 0:  # a new micro-batch starts
            self._backward_seen, self._calls = False, {}
            self.micro_batches += 1
        return super()._label(name, where)

    def _on_boundary(self, tensor, label: str) -> None:
        if not isinstance(tensor, torch.Tensor):
            return
        if in_backward():
            waiting = self._recomputed(label, tensor)  # the entry of the call it recomputes
            if waiting is not None:  # its gradient comes in the checkpoint's own, nested backward
                self._hook(tensor, waiting, nested=True)
                # the backward recomputing a reentrant checkpoint trains (autograd.grad refuses one),
                # even when every parameter it reaches sits inside the checkpoint
                self._tasks.add(torch._C._current_graph_task_id())
            return
        if not tensor.requires_grad and torch.is_grad_enabled():
            self._inert.add(label)  # nothing upstream requires grad (a frozen part): no boundary
            return
        entry = (self._call, self.micro_batches, label)
        if entry not in self._shape:
            self._entries.append(entry)
            self._shape[entry] = tuple(tensor.shape)
        if tensor.requires_grad:
            self._hook(tensor, entry)
        else:  # inside a reentrant checkpoint: hooked on recompute (a no_grad region never is)
            self._await_recompute(label.split("#")[0], entry)

    def _hook(self, tensor: torch.Tensor, entry: tuple[int, int, str], nested: bool = False) -> None:
        """Keep dE/d``tensor`` of each backward with the graph task that computed it (None: the
        nested backward of a reentrant checkpoint, part of the backward that called it)."""
        self._live.add(entry)

        def hook(grad: torch.Tensor) -> None:
            task = None if nested else torch._C._current_graph_task_id()
            self._pending.add(grad, lambda norm: self._norms.setdefault(entry, []).append((task, norm)))
            if not self._hooked:  # no parameter to see the backward accumulate: this is the sign
                self._backward_seen = True

        tensor.register_hook(hook)

    def _output_hook(self, module, args, output) -> None:
        out = output_to_hook(output)
        if out is not None:
            self._hook(out, (self._call, self.micro_batches, _OUTPUT))

    def step(self, all_reduce: bool = False, scale: torch.Tensor | float | None = None,
             weights_scaled: bool | dict = True) -> GradStep:
        """Close the optimizer step: combine micro-batches, unscale, move to the host in one sync.

        Every tensor is reduced once, in one call: the activation gradients still held, the
        gradient of each parameter of the model (the layer rows read theirs from it;
        ``param_grad_norms`` keeps them by name) and each layer's weight. ``weights_scaled``:
        whether ``.grad`` still holds values multiplied by ``scale``, or that by ``id(param)`` (the
        parameters of the optimizers the caller named) with the rest under key None."""
        pending, sinks = self._pending.take()
        # read on every step (a module replaced since the last one is seen), each parameter once
        modules = self._modules if self._modules is not None else list(unwrap(self.model).named_modules())
        named = named_parameters(modules)
        layer_weights = [layer.weight for layer in self.layers]
        # every parameter, then any layer weight that is not one (listed once, in that order)
        params = list({id(p): p for p in [p for _, p in named] + layer_weights}.values())
        where = {id(p): i for i, p in enumerate(params)}
        unique = {id(w): w for w in layer_weights}  # tied weights once
        grads, weights = [p.grad for p in params], list(unique.values())
        activations, gnorms, wnorms, seen = _reduce(self.model, pending, grads, weights)
        for sink, norm in zip(sinks, activations, strict=True):
            sink(norm)
        labels, shapes, activation = self._boundaries([*activations, *gnorms])
        if all_reduce:
            activation = all_reduce_norms(activation)
        if isinstance(weights_scaled, dict):
            weights_scaled = [weights_scaled.get(id(p), weights_scaled[None]) for p in params]
        read: dict = {}
        host = to_host(gnorms, wnorms, activation, scale, weights_scaled, read)
        self.loss_scale_value = read.get("scale", 1.0)
        n, m = len(grads), len(weights)
        g_host, w_host, a_host = host[:n], host[n:n + m], host[n + m:]
        by_id = dict(zip(unique, w_host, strict=True))
        self.weight_norms = tuple(by_id[id(w)] for w in layer_weights)
        self.param_grad_norms = {n: g_host[i] for i, (n, _) in enumerate(named) if seen[i]}
        rows = [where[id(w)] for w in layer_weights]
        # a row is the .grad a training backward of this step accumulated: not one left from an
        # earlier step (zero_grad(set_to_none=False), a layer frozen since) or no backward reached,
        # nor one zeroed by optimizer.zero_grad() after an optimizer step inside the record
        since = {i: self._since_backward(params[i]) if self._tracked else "kept" for i in rows}
        zeroed = [i for i in rows if self._stepped and since[i] == "changed"
                  and (grads[i] is None or g_host[i] == 0)]
        if zeroed:
            warnings.warn(f"resdiag: the .grad of {len(zeroed)} layer(s) was zeroed after an optimizer step "
                          "inside the record: close the record before optimizer.step()", stacklevel=3)
        got = [seen[i] and since[i] != "none" and i not in zeroed for i in rows]
        values = [g_host[i] if ok else math.nan for i, ok in zip(rows, got, strict=True)]
        step = GradStep(weight_grad=tuple(values),
                        weight_seen=tuple(got),
                        boundary_grad=tuple(a_host[:-1]),
                        boundary_shapes=tuple(shapes[label] for label in labels),
                        boundary_names=tuple(labels), output_grad=a_host[-1],
                        weight_trainable=tuple(w.requires_grad for w in layer_weights),
                        inert_boundaries=len(self._inert))
        self.steps.append(step)
        return step

    def _boundaries(self, others: list) -> tuple[list[str], dict, list]:
        """The step's boundary labels, shapes and norms (then ||dE/d output||): the norms of the
        training backwards; the model calls they reached (a forward for metrics, or of a micro-batch
        skipped before its backward, is left out) since the last reset, their boundaries numbered
        again within each micro-batch and merged across them."""
        if self.ambiguous:  # their calls' gradients cannot be told apart: left out, and said so
            warnings.warn(f"resdiag: {', '.join(sorted(self.ambiguous))} called more than once inside one "
                          "reentrant activation checkpoint; their boundaries are left out of this record "
                          "(use use_reentrant=False)", stacklevel=4)
        if self._reset_at > 1:
            self.micro_batches -= self._reset_at - 1
            warnings.warn("resdiag: the gradients were reset between backward passes of one record "
                          "(zero_grad between them: an optimizer closure such as LBFGS, or SAM): the "
                          f"record is of the last {self.micro_batches} pass(es)", stacklevel=4)
        norms = {entry: [n for task, n in got if task is None or not self._tasks or task in self._tasks]
                 for entry, got in self._norms.items() if entry[1] >= self._reset_at}
        reached = {c for (c, _, _), got in norms.items() if got}
        kept = [entry for entry in self._entries if entry in self._live and entry[0] in reached
                and entry[2].split("#")[0] not in self.ambiguous and entry[1] >= self._reset_at]
        merged: dict[str, list[torch.Tensor]] = {}
        shapes: dict[str, tuple[int, ...]] = {}
        for entry, name in zip(kept, renumber([e[2] for e in kept], [e[1] for e in kept]), strict=True):
            merged.setdefault(name, []).extend(norms.get(entry, []))
            shapes.setdefault(name, self._shape[entry])
        labels = list(merged)
        labels = [labels[i] for i in keep_boundaries(labels)] if labels else []
        boundary = [_combine(merged[label]) if merged[label] else None for label in labels]
        output = [n for (_, _, label), got in norms.items() if label == _OUTPUT for n in got]
        output = _combine(output) if output else None
        return labels, shapes, [*zero_if_unreached(boundary, [output, *others]), output]


def _reduce(model, pending, grads, weights):
    """The norms of the held activation gradients, of the parameters' gradients (None where a
    parameter has none) and of the layer weights, in one call, and which parameters have a
    gradient; under FSDP1 the sharded ones in their own all-reduced call."""
    if flat_sharded(model):
        norms, seen = flat_sharded_norms(grads + weights)
        return l2_norms(pending), norms[:len(grads)], norms[len(grads):], seen[:len(grads)]
    seen = [g is not None for g in grads]
    it = iter(grad_norms(pending + [g for g in grads if g is not None] + weights))
    activations = [next(it) for _ in pending]
    gnorms = [next(it) if ok else None for ok in seen]
    return activations, gnorms, list(it), seen


def _combine(norms: list[torch.Tensor]) -> torch.Tensor:
    """sqrt(sum_m n_m^2) of one boundary's norms over the step's micro-batches (the norm of the
    concatenated gradient), scaled like every norm (no square overflows); one norm is itself."""
    return norms[0] if len(norms) == 1 else l2_norm(torch.stack(norms))
