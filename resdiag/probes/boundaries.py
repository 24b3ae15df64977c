"""What both probes share: a context that keeps its hook handles, and hooks on the block
boundaries x_l (the input of every block call, and the output of the last block).

A subclass implements ``_on_boundary(tensor, label)`` and, if it needs more hooks, ``_install``.
Labels are ``<block>:in`` for the first call of a block in a step and ``<block>:in#2`` ... for later
calls of a block used more than once; ``keep_boundaries`` drops the outputs of the last block that
are not its final one (they are the inputs of its later calls, already recorded).
"""

from __future__ import annotations

from torch import nn


class BoundaryHooks:
    def __init__(self, blocks: list[tuple[str, nn.Module]]):
        self.blocks = blocks
        self._handles: list = []
        self._calls: dict[str, int] = {}

    def __enter__(self):
        try:
            self._install()
            last = len(self.blocks) - 1
            for i, (name, block) in enumerate(self.blocks):
                self._handles.append(block.register_forward_pre_hook(self._pre_hook(name)))
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

    def _on_boundary(self, tensor, label: str) -> None:
        raise NotImplementedError

    def _label(self, name: str, where: str) -> str:
        key = f"{name}:{where}"
        n = self._calls[key] = self._calls.get(key, 0) + 1
        return key if n == 1 else f"{key}#{n}"

    def _pre_hook(self, name: str):
        def hook(module, args):
            if args:
                self._on_boundary(args[0], self._label(name, "in"))

        return hook

    def _out_hook(self, name: str):
        def hook(module, args, output):
            self._on_boundary(output, self._label(name, "out"))

        return hook


def keep_boundaries(labels: list[str]) -> list[int]:
    """Indices to keep: every block input, and only the last output of the last block."""
    outs = [i for i, label in enumerate(labels) if ":out" in label]
    return [i for i, label in enumerate(labels) if ":out" not in label or i == outs[-1]]
