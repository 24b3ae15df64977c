"""Which axes of a block's 3-D input are tokens and which are features (docs/tokens.md, "Layout").

A 3-D boundary x (shape (n0, n1, n2)) is read as (batch, tokens, features) "btd", (batch, channels,
positions) "bdt" or (tokens, batch, features) "tbd" from what the block does with x itself:

- nn.TransformerEncoderLayer / DecoderLayer: their ``self_attn.batch_first`` ("btd" or "tbd");
- otherwise every module called on the very tensor x during the block's first call with a 3-D
  input (hooks on the block and its submodules, that call only) votes by what it consumes:
  nn.Linear, HF Conv1D, nn.LayerNorm / nn.RMSNorm over the last dim -> "btd" (they act on the
  last axis whatever the sizes); nn.Conv1d / ConvTranspose1d, nn.BatchNorm1d, nn.InstanceNorm1d,
  nn.GroupNorm -> "bdt" (they act on axis 1); nn.MultiheadAttention -> its batch_first; any
  other module whose only parameter is a vector (a norm's scale, e.g. HF's RMSNorm) -> the axis
  it has the length of, when exactly one of n1, n2 has it; other modules do not vote;
- the layout is decided when at least one module voted and all votes agree. A block in which no
  module takes x as it is (x transposed before the first layer), or whose votes disagree, is
  "unknown": its token rank is not measured and the verdict says so (``evidence.tokens``).

A Conv1d applied inside a (batch, tokens, features) block after a transpose (Conformer, HF Mamba)
does not see x itself, so it does not vote: the LayerNorm or RMSNorm that does decides "btd".
"""

from __future__ import annotations

from torch import Tensor, nn

from resdiag.probes.boundaries import block_input
from resdiag.probes.layers import TORCH_BLOCKS, _is_hf_conv1d

LAST_AXIS = (nn.Linear, nn.Bilinear)
AXIS_ONE = (nn.Conv1d, nn.ConvTranspose1d, nn.BatchNorm1d, nn.InstanceNorm1d, nn.GroupNorm)
LAYOUTS = ("btd", "bdt", "tbd")


def static_layout(block: nn.Module) -> str | None:
    """The layout of a block known from its type alone, or None (decided by ``vote`` at its call)."""
    if isinstance(block, TORCH_BLOCKS):
        return "btd" if block.self_attn.batch_first else "tbd"
    return None


def vote(module: nn.Module, x: Tensor) -> str | None:
    """The layout a module called on the 3-D tensor x implies (module docstring), or None."""
    if isinstance(module, LAST_AXIS) or _is_hf_conv1d(module):
        return "btd"
    if isinstance(module, AXIS_ONE):
        return "bdt"
    if isinstance(module, nn.MultiheadAttention):
        return "btd" if module.batch_first else "tbd"
    shape = getattr(module, "normalized_shape", None)
    if isinstance(module, (nn.LayerNorm, getattr(nn, "RMSNorm", nn.LayerNorm))):
        return "btd" if shape is not None and len(shape) == 1 else None
    params = list(module.parameters(recurse=False))
    if len(params) == 1 and params[0].ndim == 1 and not list(module.children()):
        n = params[0].numel()
        if (x.shape[2] == n) != (x.shape[1] == n):
            return "btd" if x.shape[2] == n else "bdt"
    return None


class LayoutVotes:
    """Decides each block's layout at its first call with a 3-D input (module docstring).
    ``layout[name]``: "btd", "bdt", "tbd", "unknown", or None while not yet decided."""

    def __init__(self, blocks: list[tuple[str, nn.Module]]):
        self.layout: dict[str, str | None] = {name: static_layout(block) for name, block in blocks}
        self._open: dict[str, tuple[Tensor, set[str], list]] = {}

    def hooks(self, name: str, block: nn.Module) -> list:
        """The block's pre- and post-call hooks (their handles), to be removed with the probe's."""

        def pre(module, args, kwargs):
            x = block_input(args, kwargs)
            if self.layout[name] is not None or name in self._open or not isinstance(x, Tensor) \
                    or x.ndim != 3:
                return
            votes: set[str] = set()

            def listen(sub, a, kw):
                if any(v is x for v in (*a, *kw.values())):
                    v = vote(sub, x)
                    if v is not None:
                        votes.add(v)

            handles = [m.register_forward_pre_hook(listen, with_kwargs=True) for m in list(block.modules())[1:]]
            listen(block, args, kwargs)  # the block itself (a Conv1d named as a block)
            self._open[name] = (x, votes, handles)

        def post(module, args, output):
            opened = self._open.pop(name, None)
            if opened is None:
                return
            _, votes, handles = opened
            for h in handles:
                h.remove()
            self.layout[name] = votes.pop() if len(votes) == 1 else "unknown"

        return [block.register_forward_pre_hook(pre, with_kwargs=True),
                block.register_forward_hook(post, always_call=True)]

    def close(self) -> None:
        for _, _, handles in self._open.values():
            for h in handles:
                h.remove()
        self._open.clear()
