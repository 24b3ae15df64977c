"""The Monitor: record gradient flow (and feature ranks) every N steps of a user's training loop.

    from resdiag.api import Monitor

    monitor = Monitor(model, every=10, jsonl="resdiag.jsonl")
    for step, (x, y) in enumerate(loader):
        with monitor.record(step) as rec:      # around forward and backward
            loss = loss_fn(model(x), y)
            loss.backward()
        optimizer.step(); optimizer.zero_grad()
        if rec:                                # a Recording on steps 0, 10, 20 ...; None otherwise
            print(rec.result.verdict.status, rec.lightning()["grad_2.0_norm_total"])

Between recorded steps ``record`` installs nothing: the cost is one modulo. On a recorded step the
hooks live only inside the ``with`` block. Activation gradients dE/dx_l need the forward pass
inside the block; with only ``backward()`` inside, the weight gradients are still recorded.

Under ``torch.distributed`` (e.g. a DistributedDataParallel model launched by ``torchrun``) the
weight gradients are read from ``.grad`` after backward, i.e. after DDP's all-reduce, and the
activation-gradient norms are combined over ranks, so every rank holds the same numbers; only rank
0 writes the JSON-lines and TensorBoard streams.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from resdiag.data import DataSpec
from resdiag.diagnosis.thresholds import GradThresholds, RankThresholds
from resdiag.metrics.registry import GRAD_FLOW, RANK, values
from resdiag.probes.features import FeatureProbe
from resdiag.probes.grad import GradientProbe
from resdiag.probes.layers import find_blocks, unwrap
from resdiag.results import GradFlowResult, ModelInfo, RankResult, encode
from resdiag.run.common import model_info


def is_main_process() -> bool:
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


@dataclass
class Recording:
    """What one recorded step produced: the same result objects the CLI renders."""

    step: int
    result: GradFlowResult
    rank: RankResult | None
    param_norms: dict[str, float]  # ||.grad|| of every parameter with a gradient, by name

    def lightning(self, norm_type: float = 2.0) -> dict[str, float]:
        """The keys of ``lightning.pytorch.utilities.grad_norm``: ``grad_2.0_norm/<param>`` for
        each parameter with a gradient, and ``grad_2.0_norm_total`` (the norm of those norms)."""
        if norm_type != 2.0:
            raise ValueError("resdiag records 2-norms only")
        out = {f"grad_2.0_norm/{name}": v for name, v in self.param_norms.items()}
        out["grad_2.0_norm_total"] = math.sqrt(sum(v * v for v in self.param_norms.values()))
        return out

    def scalars(self) -> dict[str, float]:
        """Every registered metric of this recording (``resdiag.metrics.registry``), by name."""
        out = values(GRAD_FLOW, self.result.summary)
        if self.rank is not None:
            out |= values(RANK, self.rank.summary)
        return out

    def to_dict(self) -> dict:
        return {"step": self.step, "grad_flow": self.result.to_dict(),
                "rank": self.rank.to_dict() if self.rank else None,
                "lightning": encode(self.lightning())}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False)

    def report(self, console=None) -> None:
        from rich.console import Console

        from resdiag.report.table import grad_flow_tables, print_all, rank_tables

        console = console or Console()
        print_all(console, grad_flow_tables(self.result))
        if self.rank:
            print_all(console, rank_tables(self.rank))

    def plot(self, path: str | Path) -> None:
        from resdiag.report.plot import plot_grad_flow

        plot_grad_flow([self.result], Path(path))


class Monitor:
    """Records gradient flow every ``every`` steps of a user's training loop."""

    def __init__(
        self,
        model: nn.Module,
        *,
        every: int = 100,
        features: bool = False,
        blocks: str | None = None,
        jsonl: str | Path | None = None,
        tensorboard: str | Path | None = None,
        thresholds: GradThresholds = GradThresholds(),
        rank_thresholds: RankThresholds = RankThresholds(),
        info: ModelInfo | None = None,
        objective: str = "user",
    ):
        """``info`` names the model in the results (default: its class name, family "custom");
        ``objective`` says which loss the loop backpropagates (``RunInfo.objective``; default "user":
        the user's own)."""
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.model, self.every, self.features = model, every, features
        self.blocks = find_blocks(model, blocks)
        self.thresholds, self.rank_thresholds = thresholds, rank_thresholds
        self.history: list[Recording] = []
        self.info, self.objective = info, objective
        self._jsonl = Path(jsonl) if jsonl is not None else None
        self._tb = _tensorboard(tensorboard) if tensorboard is not None and is_main_process() else None

    def due(self, step: int) -> bool:
        return step % self.every == 0

    @contextlib.contextmanager
    def record(self, step: int) -> Iterator[Recording | None]:
        """Around forward and backward of one step: records on due steps, else does nothing."""
        if not self.due(step):
            yield None
            return
        holder = _Holder()
        ddp = isinstance(self.model, nn.parallel.DistributedDataParallel)
        with contextlib.ExitStack() as stack:
            probe = stack.enter_context(
                GradientProbe(self.model, blocks=self.blocks, weights_from="grad" if ddp else "hook"))
            fprobe = stack.enter_context(FeatureProbe(self.model, self.blocks)) if self.features else None
            yield holder
            step_record = probe.step(all_reduce=True)
            holder.fill(self._recording(step, probe, step_record, fprobe))
        self.history.append(holder.recording)
        self._emit(holder.recording)

    def _recording(self, step, probe, step_record, fprobe) -> Recording:
        from resdiag.run.gradflow import grad_flow_from_probe

        info = self.info or model_info(unwrap(self.model), name=type(unwrap(self.model)).__name__)
        shapes = step_record.boundary_shapes
        batch = shapes[0][0] if shapes and shapes[0] else 0
        mode = "train" if self.model.training else "eval"
        result = grad_flow_from_probe(probe, info, math.nan, 1, batch, 0, _device(self.model),
                                      DataSpec("user"), mode, self.thresholds, objective=self.objective)
        rank = None
        if fprobe is not None:
            from resdiag.run.rank import rank_from_probe

            rank = rank_from_probe(self.model, fprobe, info, self.rank_thresholds)
        params = [(n, p.grad) for n, p in unwrap(self.model).named_parameters() if p.grad is not None]
        norms = torch.stack([torch.linalg.vector_norm(g.float()) for _, g in params]).cpu().tolist() \
            if params else []
        return Recording(step, result, rank, {n: v for (n, _), v in zip(params, norms, strict=True)})

    def _emit(self, rec: Recording) -> None:
        if not is_main_process():
            return
        if self._jsonl is not None:
            with open(self._jsonl, "a") as fh:
                fh.write(rec.to_json() + "\n")
        if self._tb is not None:
            for layer in rec.result.layers:
                if math.isfinite(layer.grad_norm):
                    self._tb.add_scalar(f"resdiag/weight_grad/{layer.name}", layer.grad_norm, rec.step)
            for b in rec.result.boundaries:
                if math.isfinite(b.grad_norm):
                    self._tb.add_scalar(f"resdiag/activation_grad/{b.name}", b.grad_norm, rec.step)
            for name, value in rec.scalars().items():
                if math.isfinite(value):
                    self._tb.add_scalar(f"resdiag/{name}", value, rec.step)
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


class _Holder:
    """What ``record`` yields: falsy-free stand-in that becomes the Recording after the block."""

    recording: Recording | None = None

    def fill(self, recording: Recording) -> None:
        self.recording = recording

    def __getattr__(self, name):
        if self.recording is None:
            raise AttributeError(f"the recording is available after the 'with' block ({name})")
        return getattr(self.recording, name)



def _device(model: nn.Module) -> str:
    p = next(model.parameters(), None)
    return str(p.device) if p is not None else "cpu"


def _tensorboard(logdir):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # the tensorboard package is optional
        raise ImportError("tensorboard export needs 'pip install tensorboard'") from exc
    return SummaryWriter(str(logdir))
