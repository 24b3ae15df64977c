"""``run_check``: the one library call behind ``resdiag check``."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

from resdiag.check.baseline import compare, read_baseline, warnings, write_baseline
from resdiag.check.config import CheckConfig
from resdiag.check.gates import limit_gates, verdict_gates
from resdiag.check.result import CheckResult
from resdiag.errors import ResdiagError


def baseline_path(cfg: CheckConfig, given: Path | None, update: bool) -> Path | None:
    """``--baseline``, else ``baseline.file`` of the config; checked before any model runs."""
    path = given if given is not None else cfg.baseline_file
    if update and path is None:
        raise ResdiagError("--update-baseline needs a file to write: give --baseline FILE or set "
                           "baseline.file in the config")
    if path is not None and path.is_dir():
        raise ResdiagError(f"baseline {path} is a folder; give a .json file")
    if update and path is not None and not path.parent.resolve().is_dir():
        raise ResdiagError(f"baseline {path}: folder {path.parent} does not exist")
    return path


def run_check(cfg: CheckConfig, baseline: Path | None = None, update_baseline: bool = False, *,
              write: bool = True) -> CheckResult:
    """Run every model's probes and evaluate its gates.

    With a baseline (``baseline`` or ``baseline.file``) each metric is also compared with the stored
    one; with ``update_baseline`` the baseline is (re)written from this run instead, atomically, and
    only the absolute gates decide. ``write=False`` leaves that write to the caller, which writes it
    together with its other outputs (``resdiag check``: all or nothing, ``resdiag.writes``).
    """
    import torch

    import resdiag
    from resdiag.check.runner import run_model
    from resdiag.run.common import resolve_device

    path = baseline_path(cfg, baseline, update_baseline)
    base = read_baseline(path) if path is not None and not update_baseline else None
    device = str(resolve_device(cfg.device))
    with _torch_settings(cfg.threads, cfg.deterministic) as threads:
        runs = tuple(run_model(spec, cfg.seed, device) for spec in cfg.models)
    gates = []
    for spec, run in zip(cfg.models, runs, strict=True):
        gates += limit_gates(run, spec.gates)
        if spec.gates.require_healthy:
            gates += verdict_gates(run)
        if base is not None:
            gates += compare(run, base, cfg.tolerances)
    result = CheckResult(resdiag.__version__, torch.__version__, cfg.seed, device, threads, runs,
                         tuple(gates))
    if base is not None:
        result = dataclasses.replace(result, warnings=tuple(warnings(result, base)))
    if update_baseline and write:
        write_baseline(path, result)
    return result


@contextlib.contextmanager
def _torch_settings(threads: int | None, deterministic: bool) -> Iterator[int]:
    """Run with ``threads`` CPU threads (None: as set) and, if asked, deterministic algorithms; yield
    the thread count. Everything is restored afterwards.

    Deterministic algorithms need cuBLAS's fixed workspace (PyTorch's "Reproducibility" notes):
    CUBLAS_WORKSPACE_CONFIG is set to :4096:8 unless already set, which takes effect when CUDA has
    not been used yet in the process, as in a ``resdiag check`` run.
    """
    import torch

    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
              torch.backends.cudnn.benchmark, os.environ.get(_CUBLAS))
    try:
        if threads is not None:
            try:
                torch.set_num_threads(threads)
            except (ValueError, RuntimeError, OverflowError):  # beyond a C int: torch cannot
                raise ResdiagError(f"threads = {threads}: torch cannot run that many threads; give the "
                                   f"number of CPU cores or fewer ({os.cpu_count()} here)") from None
        if deterministic:
            os.environ.setdefault(_CUBLAS, ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1])
        torch.backends.cudnn.benchmark = before[2]
        if before[3] is None:
            os.environ.pop(_CUBLAS, None)


_CUBLAS = "CUBLAS_WORKSPACE_CONFIG"
