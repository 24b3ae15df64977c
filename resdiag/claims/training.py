"""Short trainings, one per variant and seed, each scored on the training and held-out splits.

Every variant is trained with the same recipe (``resdiag train``: SGD, momentum 0.9, weight decay
1e-4, lr divided by 10 at 50% and 75% of the steps), the same budget and the same seeds. After
training, BN statistics are re-estimated on the training split (``evaluate.reestimate_bn``) and
the network is scored in eval mode on the whole training split and on the held-out split.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from resdiag.claims.budget import Budget
from resdiag.claims.evaluate import Split, bn_responses, error, splits, trained_model
from resdiag.claims.stats import Sample, sample
from resdiag.zoo import resolve

TAIL = 0.2  # the curve's final loss is the mean over the last 20% of the steps


@dataclass(frozen=True)
class Data:
    """The data of a claims run: its name and the two splits the trained nets are scored on."""

    name: str
    train: Split  # the training split (synthetic: the first seed's set)
    test: Split | None  # None: the data has no held-out split (synthetic)
    input_shape: tuple[int, ...]
    synthetic_size: int
    # Variants already trained, by model config: a network two claims share (ResNet with identity
    # shortcut and post-activation: C3's identity, C4's post, C5's ResNet) is trained once.
    trained: dict = field(default_factory=dict, compare=False)

    def train_for(self, seed: int) -> Split:
        """The split the run of ``seed`` trained on: the same for every seed except synthetic data."""
        if self.name != "synthetic":
            return self.train
        return splits(self.name, self.input_shape, 10, seed, self.synthetic_size)[0]


@dataclass(frozen=True)
class Variant:
    """One network trained with every seed of the budget."""

    name: str
    train_error: Sample  # eval mode, whole training split, BN re-estimated
    test_error: Sample  # the same on the held-out split (nan without one)
    loss: Sample  # mean training loss over the last TAIL of the steps
    responses: Sample  # mean over layers of the std of each block's BN outputs, held-out split
    checkpoints: tuple[str, ...]
    curve: tuple[tuple[int, float, float], ...]  # (step, loss, error) of seed 0

    def to_dict(self) -> dict:
        out = {k: getattr(self, k).to_dict() for k in ("train_error", "test_error", "loss", "responses")}
        return {**out, "checkpoints": list(self.checkpoints), "curve": [list(c) for c in self.curve]}



def load_data(data: str, b: Budget) -> Data:
    train, test = splits(data, b.input_shape, 10, b.seeds[0], b.synthetic_size)
    return Data(data, train, test, b.input_shape, b.synthetic_size)


def small(family: str, depth: int, b: Budget, **kw):
    """The trained nets: ``b.width`` times the 16/32/64 filters, ``b.input_shape`` inputs."""
    return resolve(family, depth, width=b.width, input_shape=b.input_shape, **kw)


def train_variant(name: str, cfg, b: Budget, out: Path, data: Data) -> Variant:
    """Train ``cfg`` once per seed of the budget and score each run (or reuse the runs of ``cfg``)."""
    from resdiag.run.target import TargetSpec
    from resdiag.train import RunOptions, run_training

    if cfg in data.trained:
        return data.trained[cfg]
    rows, curve = [], ()
    for seed in b.seeds:
        stats = []
        folder = out / f"{name}-s{seed}"
        recipe = dict(steps=b.steps, batch_size=b.batch_size, lr=b.lr, seed=seed, data=data.name,
                      synthetic_size=b.synthetic_size)
        options = RunOptions(out=folder, record_every=b.steps, checkpoint_every=b.steps, features=False,
                             device=b.device, overwrite=True, plots=False)
        run_training(TargetSpec(arch=cfg), recipe, options, on_step=stats.append)
        tail = stats[-max(1, int(len(stats) * TAIL)):]
        own = data.train_for(seed)
        model = trained_model(cfg, folder / "checkpoint.pt", seed, own, b.device)
        held = data.test
        rows.append((
            error(model, own),
            error(model, held) if held is not None else float("nan"),
            statistics.fmean(s.loss for s in tail),
            _mean(bn_responses(model, held if held is not None else own)),
            str(folder / "checkpoint.pt"),
        ))
        if not curve:
            curve = tuple((s.step, s.loss, s.error) for s in stats)
    cols = list(zip(*rows, strict=True))
    data.trained[cfg] = Variant(name, sample(cols[0]), sample(cols[1]), sample(cols[2]), sample(cols[3]),
                                tuple(cols[4]), curve)
    return data.trained[cfg]


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")
