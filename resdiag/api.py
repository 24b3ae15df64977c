"""The public Python entry points: ``from resdiag.api import Monitor`` (docs/api.md).

``Monitor`` and ``Recording`` live in ``resdiag.monitor``; ``TargetSpec``, ``build_target`` and the
probes that run on a target in ``resdiag.run``.
"""

from resdiag.monitor import Monitor, Recording, is_main_process
from resdiag.run.gradflow import grad_flow, run_grad_flow
from resdiag.run.inputs import InputSpec
from resdiag.run.rank import rank, run_rank
from resdiag.run.target import Target, TargetSpec, build_target

__all__ = ["InputSpec", "Monitor", "Recording", "Target", "TargetSpec", "build_target", "grad_flow",
           "is_main_process", "rank", "run_grad_flow", "run_rank"]
