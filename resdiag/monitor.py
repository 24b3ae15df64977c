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

One record per optimizer step (docs/api.md, "Training stacks"): the ``with`` block holds every
micro-batch of the step; weight gradients are read once from ``.grad`` when it closes (after DDP's
all-reduce or FSDP's reduce-scatter: the gradient the optimizer applies), boundary norms are
combined over micro-batches and ranks, checkpoint recomputations are ignored, and a GradScaler's
scale is divided out. Every rank holds the same numbers; only rank 0 writes the JSON-lines and
TensorBoard streams.
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
from resdiag.probes.training import StepProbe
from resdiag.probes.unscale import loss_scale
from resdiag.probes.layers import find_blocks, find_layers, unwrap
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
    micro_batches: int = 1  # forward+backward passes combined into this optimizer step
    loss_scale: float = 1.0  # the GradScaler scale divided out of every norm (1: none)

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
        return {"step": self.step, "micro_batches": self.micro_batches, "loss_scale": self.loss_scale,
                "grad_flow": self.result.to_dict(),
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
        scaler=None,
        optimizer=None,
        spectra_every: int = 1,
    ):
        """``info`` names the model in the results (default: its class name, family "custom");
        ``objective`` says which loss the loop backpropagates (``RunInfo.objective``; default "user":
        the user's own). ``spectra_every`` (with ``features``): the weight spectra, which cost more
        than the features (docs/api.md, "Cost"), are taken on every ``spectra_every``-th recording,
        the first included; the others have ``rank.weights_measured`` False and no weight rows.
        ``scaler``, ``optimizer``: the ``torch.amp.GradScaler`` whose scaled loss the loop
        backpropagates, and (one scaler for several optimizers) the optimizer(s) of this model."""
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        if spectra_every < 1:
            raise ValueError(f"spectra_every must be >= 1, got {spectra_every}")
        self.spectra_every, self._feature_records = spectra_every, 0
        self.model, self.every, self.features = model, every, features
        # found again only when the modules changed (``_modules_now``): docs/api.md, "Cost"
        self._pattern, self._modules = blocks, list(unwrap(model).named_modules())
        self.blocks, self.layers = find_blocks(model, blocks), find_layers(model)
        self._info_given = info is not None
        self.thresholds, self.rank_thresholds = thresholds, rank_thresholds
        self.history: list[Recording] = []
        self.info, self.objective = info, objective
        self.scaler, self.optimizer = scaler, optimizer
        self._open: tuple | None = None
        self._jsonl = Path(jsonl) if jsonl is not None else None
        self._tb = _tensorboard(tensorboard) if tensorboard is not None and is_main_process() else None

    def due(self, step: int) -> bool:
        return step % self.every == 0

    @contextlib.contextmanager
    def record(self, step: int, scaler=None, optimizer=None) -> Iterator[Recording | None]:
        """Around the forward and backward passes of one optimizer step (every micro-batch of it):
        records on due steps, else does nothing. ``scaler``, ``optimizer``: as the Monitor's, for
        this step (default: the Monitor's)."""
        if not self.due(step):
            yield None
            return
        holder = _Holder()
        self.begin(step)
        try:
            yield holder
        except BaseException:
            self._close()
            raise
        holder.fill(self.end(scaler=scaler, optimizer=optimizer))

    def begin(self, step: int, at_init: bool | None = None) -> None:
        """Open a recorded step (``record`` does this; callbacks call it before the first
        micro-batch's forward). ``at_init``: whether the weights are still the initial ones
        (default: ``step == 0``); the weight-scale rule speaks only of those."""
        if self._open is not None:
            raise RuntimeError(f"step {self._open[0]} is still being recorded")
        modules = self._modules_now()
        stack = contextlib.ExitStack()
        try:
            probe = stack.enter_context(StepProbe(self.model, blocks=self.blocks, layers=self.layers,
                                                  modules=modules))
            fprobe = (stack.enter_context(FeatureProbe(self.model, self.blocks, first_micro_batch=True))
                      if self.features else None)
        except BaseException:
            stack.close()
            raise
        self._open = (step, stack, probe, fprobe, step == 0 if at_init is None else at_init)

    def _modules_now(self) -> list[tuple[str, nn.Module]]:
        """The model's modules as they are now. When one was added, removed or replaced since they
        were last read (a new classifier head), the layers and blocks are found again, and the
        model's description unless the caller gave it: no row of a module the model no longer has."""
        modules = list(unwrap(self.model).named_modules())
        if modules != self._modules:  # identity of each module, then its name: no tensor is read
            self.blocks, self.layers = find_blocks(self.model, self._pattern), find_layers(self.model)
            self._modules = modules
            if not self._info_given:
                self.info = None
        return modules

    def end(self, scaler=None, optimizer=None) -> Recording:
        """Close the step opened by ``begin`` after its last backward and before the optimizer
        step: read ``.grad`` once, unscale by ``scaler`` (or the Monitor's), emit the record."""
        if self._open is None:
            raise RuntimeError("no recorded step is open (call begin(step) first)")
        step, stack, probe, fprobe, at_init = self._open
        try:
            scale, weights_scaled = loss_scale(scaler if scaler is not None else self.scaler,
                                               optimizer if optimizer is not None else self.optimizer)
            step_record = probe.step(all_reduce=True, scale=scale, weights_scaled=weights_scaled)
            recording = self._recording(step, probe, step_record, fprobe, at_init)
        finally:
            self._close()
        self.history.append(recording)
        self._emit(recording)
        return recording

    @property
    def is_open(self) -> bool:
        """Whether a step opened by ``begin`` waits for ``end``."""
        return self._open is not None

    def abort(self) -> None:
        """Drop the open step, if any, without a record (its hooks are removed)."""
        self._close()

    def _close(self) -> None:
        if self._open is not None:
            self._open[1].close()
            self._open = None

    def _recording(self, step, probe, step_record, fprobe, at_init) -> Recording:
        from resdiag.run.gradflow import grad_flow_from_probe

        if self.info is None:  # counted once, again when the modules change
            self.info = model_info(unwrap(self.model), name=type(unwrap(self.model)).__name__)
        info = self.info
        shapes = step_record.boundary_shapes
        batch = shapes[0][0] if shapes and shapes[0] else 0
        mode = "train" if self.model.training else "eval"
        result = grad_flow_from_probe(probe, info, math.nan, 1, batch, 0, _device(self.model),
                                      DataSpec("user"), mode, self.thresholds, objective=self.objective,
                                      at_init=at_init)  # later steps: weights the loop has trained
        rank = None
        if fprobe is not None:
            from resdiag.run.rank import rank_from_probe

            spectra = self._feature_records % self.spectra_every == 0
            self._feature_records += 1
            rank = rank_from_probe(self.model, fprobe, info, self.rank_thresholds, spectra=spectra,
                                   layers=self.layers)
        return Recording(step, result, rank, self._param_norms(probe), micro_batches=probe.micro_batches,
                         loss_scale=probe.loss_scale_value)

    def _param_norms(self, probe: StepProbe) -> dict[str, float]:
        """||p.grad|| by parameter name as Lightning's ``grad_norm`` names them for the module the
        Monitor was given (torch.compile's ``_orig_mod.`` removed), unscaled like the layer rows;
        taken by the probe in the step's one reduction and host sync."""
        return {_clean(name): v for name, v in probe.param_grad_norms.items()}

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


def _clean(name: str) -> str:
    return name.replace("_orig_mod.", "").replace("_fsdp_wrapped_module.", "")


def _device(model: nn.Module) -> str:
    p = next(model.parameters(), None)
    return str(p.device) if p is not None else "cpu"


def _tensorboard(logdir):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # the tensorboard package is optional
        raise ImportError("tensorboard export needs 'pip install tensorboard'") from exc
    return SummaryWriter(str(logdir))
