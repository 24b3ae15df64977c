"""What both probes share: a context that keeps its hook handles, and hooks on the block
boundaries x_l (the input of every block call, and the output of the last block).

A subclass implements ``_on_boundary(tensor, label)`` and, if it needs more hooks, ``_install``.
Labels are ``<block>:in`` for the first call of a block in a step and ``<block>:in#2`` ... for later
calls of a block used more than once; ``keep_boundaries`` drops the outputs of the last block that
are not its final one (they are the inputs of its later calls, already recorded).

Which tensor is x_l (docs/architectures.md, "Blocks"): the first positional argument of the call,
else the keyword argument ``hidden_states`` (HF), ``x``, ``src``/``tgt`` (nn.Transformer*Layer) or
``hidden_state``; the block's output is the tensor itself, the first element of a tuple/list
(HF layers return ``(hidden_states, attentions, ...)``), or ``last_hidden_state``/``hidden_states``
of a dict or ModelOutput.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from resdiag.metrics.norms import l2_norms
from resdiag.model_output import split_output

HIDDEN_KWARGS = ("hidden_states", "x", "src", "tgt", "hidden_state", "input")
HIDDEN_KEYS = ("last_hidden_state", "hidden_states", "hidden_state")


_FLUSH_BYTES = 64 << 20  # activation gradients held before their norms are taken together


class PendingNorms:
    """Norms of activation gradients taken in batches, not one by one inside backward hooks.

    A backward hook only keeps a reference to its gradient (no kernel launch: on a GPU a small
    per-boundary reduction costs more in launch and dispatch than in arithmetic); once the kept
    gradients pass 64 MiB, and at the end of the step, their norms are taken in one fused call
    (``l2_norms``; at the end of a StepProbe step, ``take`` hands them to the step's own single
    reduction) and the gradients released. Holding a reference is safe: the autograd engine
    reuses a gradient's memory in place only when nothing else refers to it. Costs at most 64 MiB
    of device memory beyond what the backward pass holds anyway."""

    def __init__(self):
        self._grads: list[torch.Tensor] = []
        self._sinks: list = []  # where each norm goes: a callable taking the float64 norm tensor
        self._bytes = 0

    def add(self, grad: torch.Tensor, sink) -> None:
        self._grads.append(grad.detach())
        self._sinks.append(sink)
        self._bytes += grad.numel() * grad.element_size()
        if self._bytes >= _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._grads:
            for sink, norm in zip(self._sinks, l2_norms(self._grads), strict=True):
                sink(norm)
        self._grads, self._sinks, self._bytes = [], [], 0

    def take(self) -> tuple[list[torch.Tensor], list]:
        """The gradients not yet reduced and their sinks, handed over (and released here) to a
        caller that reduces them together with its own tensors in one call."""
        out = (self._grads, self._sinks)
        self._grads, self._sinks, self._bytes = [], [], 0
        return out


def in_backward() -> bool:
    """Whether the autograd engine is running a backward on this thread: a block called then is
    being recomputed for activation checkpointing, not called by the model's forward."""
    return torch._C._current_graph_task_id() != -1


def output_to_hook(output) -> torch.Tensor | None:
    """The model output whose gradient this step's backward will carry (its first tensor, as
    ``split_output`` reads it), or None: not differentiable, or a checkpoint recomputation."""
    out = split_output(output)[0]
    return out if out is not None and out.requires_grad and not in_backward() else None


def has_reentrant_checkpoint(loss: torch.Tensor) -> bool:
    """Whether the autograd graph behind ``loss`` holds a reentrant activation checkpoint
    (``torch.utils.checkpoint(use_reentrant=True)``, and implementations named after it). Walks the
    graph once: a few milliseconds on ResNet-110."""
    seen, todo = set(), [loss.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if "Checkpoint" in type(node).__name__:
            return True
        todo.extend(next_node for next_node, _ in node.next_functions)
    return False


def edge_hook(where, fn) -> None:
    """Call ``fn(grad)`` in backward with the gradient at ``where``, when it is defined: a
    ``GradientEdge`` (a tensor's ``grad_fn`` and ``output_nr``, read when it was recorded), through a
    pre-hook on that node, or a leaf tensor, through its tensor hook. The node is where
    ``tensor.register_hook`` places a hook too, so it sees the same gradient (summed over the
    tensor's uses), and, registered after the tensor was modified in place, still the gradient of the
    value it had then (tests/probes/test_grad_hook.py)."""
    if isinstance(where, torch.Tensor):
        where.register_hook(fn)
        return
    nr = where.output_nr

    def pre(grad_outputs):
        grad = grad_outputs[nr]
        if grad is not None:
            fn(grad)

    where.node.register_prehook(pre)


def block_input(args: tuple, kwargs: Mapping):
    """The residual-stream tensor a block was called with, or None."""
    if args:
        return args[0]
    for key in HIDDEN_KWARGS:
        if isinstance(kwargs.get(key), torch.Tensor):
            return kwargs[key]
    return None


def block_output(output):
    """The residual-stream tensor a block returned, or None."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output:
        return output[0] if isinstance(output[0], torch.Tensor) else None
    if isinstance(output, Mapping):  # dict, and HF ModelOutput (an OrderedDict)
        return next((output[k] for k in HIDDEN_KEYS if isinstance(output.get(k), torch.Tensor)), None)
    return None


class BoundaryHooks:
    def __init__(self, blocks: list[tuple[str, nn.Module]]):
        self.blocks = blocks
        self._handles: list = []
        self._calls: dict[str, int] = {}
        self._recompute: dict[str, list] = {}  # "<block>:<where>" -> what waits for its recomputation
        self._segment: dict[str, object] = {}  # block key -> reentrant checkpoint it was last recomputed in
        self.ambiguous: set[str] = set()  # block keys recomputed twice in one reentrant checkpoint
        self._call = 0  # the model call now running or last run (counted by _install_call_hooks)
        self._depth = 0  # how many of the call-chain modules are running now

    def __enter__(self):
        try:
            self._install()
            last = len(self.blocks) - 1
            for i, (name, block) in enumerate(self.blocks):
                self._handles.append(block.register_forward_pre_hook(self._pre_hook(name), with_kwargs=True))
                if i == last:
                    self._handles.append(block.register_forward_hook(self._out_hook(name)))
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Remove every hook this probe installed (also called when installing fails)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _install(self) -> None:
        """Further hooks of a subclass; their handles go into ``self._handles``."""

    def _install_call_hooks(self, model: nn.Module) -> None:
        """Count the calls of the model (``self._call``): a call starts when the outermost of the
        modules that hold every block (``model``, its unwrapped inner module, the common ancestors of
        the blocks) is entered outside a backward. A framework that runs an inner module (Lightning's
        ``self.model(x)`` under a Monitor of the LightningModule) is counted there; blocks run by a
        loop outside every such module start a call at each entry into the first block."""
        def pre(module, args) -> None:
            if not in_backward():
                self._call += self._depth == 0
                self._depth += 1

        def post(module, args, output) -> None:
            if not in_backward():
                self._depth -= 1

        for module in call_chain(model, [name for name, _ in self.blocks]):
            self._handles.append(module.register_forward_pre_hook(pre))
            self._handles.append(module.register_forward_hook(post, always_call=True))

    def _on_boundary(self, tensor, label: str) -> None:
        raise NotImplementedError

    def _active(self) -> bool:
        """Whether the block hooks record this call (a subclass may skip some forwards)."""
        return True

    def _await_recompute(self, key: str, item) -> None:
        """Keep ``item`` for the recomputation of block call ``key`` in backward: a boundary inside a
        reentrant checkpoint, whose first forward runs without autograd."""
        self._recompute.setdefault(key, []).append(item)

    def _recomputed(self, key: str, tensor: torch.Tensor):
        """On a call of ``key`` in backward (a recomputation): the item waiting for it, the last
        one first (backward recomputes the segments in reverse order), or None. Recomputed twice
        inside the same reentrant checkpoint (the autograd node now running), the block was called
        more than once there: the calls of one segment cannot be matched to their first forward
        (the calls inside one are recomputed in forward order), so ``key`` goes into ``ambiguous``."""
        waiting = self._recompute.get(key)
        if waiting is None:
            return None
        node = torch._C._current_autograd_node()
        if node is not None and self._segment.get(key) is node:
            self.ambiguous.add(key)
        self._segment[key] = node
        return waiting.pop() if waiting and tensor.requires_grad else None

    def _label(self, name: str, where: str) -> str:
        key = f"{name}:{where}"
        n = self._calls[key] = self._calls.get(key, 0) + 1
        return key if n == 1 else f"{key}#{n}"

    def _pre_hook(self, name: str):
        first = name == self.blocks[0][0]

        def hook(module, args, kwargs):
            if first and self._depth == 0 and not in_backward():
                self._call += 1  # blocks run by the caller's own loop: each pass through them a call
            if not self._active():
                return
            x = block_input(args, kwargs)
            if x is not None:
                self._on_boundary(x, self._label(name, "in"))

        return hook

    def _out_hook(self, name: str):
        def hook(module, args, output):
            if not self._active():
                return
            y = block_output(output)
            if y is not None:
                self._on_boundary(y, self._label(name, "out"))

        return hook


def call_chain(model: nn.Module, block_names: list[str]) -> list[nn.Module]:
    """``model``, the module inside its wrappers, and the modules at the common prefixes of the
    block names (each at most once), outermost first."""
    from resdiag.probes.layers import unwrap

    inner = unwrap(model)
    chain = {id(model): model, id(inner): inner}
    parts = [name.split(".") for name in block_names]
    for depth in range(1, min(map(len, parts), default=1)):
        prefix = parts[0][:depth]
        if any(p[:depth] != prefix for p in parts):
            break
        try:
            module = inner.get_submodule(".".join(prefix))
        except AttributeError:
            continue
        chain.setdefault(id(module), module)
    return list(chain.values())


def keep_boundaries(labels: list[str]) -> list[int]:
    """Indices to keep: every block input, and only the last output of the last block."""
    outs = [i for i, label in enumerate(labels) if ":out" in label]
    return [i for i, label in enumerate(labels) if ":out" not in label or i == outs[-1]]


def zero_if_unreached(norms: list[torch.Tensor | None],
                      others: list[torch.Tensor | None]) -> list[torch.Tensor | None]:
    """The boundary norms of a step's model calls that the backward reached (their output or a
    boundary received a gradient), None read as exactly 0: a boundary of such a call that gets no
    gradient is one the loss does not depend on (a ``detach()``, ``.data``, an integer cast), which
    autograd gives as None for a gradient of 0. (A call the backward never reached, such as a
    forward for metrics or a micro-batch skipped before its backward, is left out by the probes
    before this.) The zeros go on the device of the first norm here or in ``others``."""
    if all(n is not None for n in norms):
        return norms
    device = next((n.device for n in (*norms, *others) if n is not None), torch.device("cpu"))
    zero = torch.zeros((), dtype=torch.float64, device=device)
    return [zero if n is None else n for n in norms]


def renumber(labels: list[str], groups: list[int] | None = None) -> list[str]:
    """The call numbers of ``labels`` counted again (``<block>:in``, ``<block>:in#2``, ...) once the
    calls the backward never reached are left out: the k-th kept call of a block (within its group,
    the Monitor's micro-batch) is ``#k``."""
    counts: dict[tuple, int] = {}
    out = []
    for label, group in zip(labels, groups or [0] * len(labels), strict=True):
        key = label.split("#")[0]
        n = counts[group, key] = counts.get((group, key), 0) + 1
        out.append(key if n == 1 else f"{key}#{n}")
    return out
