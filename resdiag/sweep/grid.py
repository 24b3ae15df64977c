"""A sweep's grid: architectures x depths x variants x seeds, as plain data.

Each cell has a stable id (its file name), so an interrupted sweep finds the cells it has done.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

from resdiag.errors import ResdiagError

from resdiag.metrics.registry import PROBES


NO_NORM = "own"  # the norm axis of a family whose config has no norm field: it keeps its own


@dataclass(frozen=True)
class Cell:
    family: str  # a family from `resdiag models`: resnet, plain, preact_resnet, mlp, plain_mlp ...
    depth: int
    norm: str  # "batch" | "none"; NO_NORM for a family without a norm option (transformers: LayerNorm)
    shortcut: str  # --shortcut syntax
    seed: int

    @property
    def id(self) -> str:
        sc = self.shortcut.replace(":", "_").replace(",", "_").replace("-", "m").replace(".", "p")
        return f"{self.family}-d{self.depth}-{self.norm}-{sc}-s{self.seed}"

    @property
    def variant(self) -> str:
        """The cell without its depth and seed: one line of a plot."""
        sc = "" if self.shortcut == "identity" else f" {self.shortcut}"
        return f"{self.family} ({self.norm}){sc}"

    def config(self):
        from resdiag.zoo import parse_shortcut, resolve

        norm = None if self.norm == NO_NORM else self.norm
        return resolve(self.family, self.depth, norm=norm, shortcut=parse_shortcut(self.shortcut))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Grid:
    families: tuple[str, ...]
    depths: tuple[int, ...]
    norms: tuple[str, ...] = ("batch",)
    shortcuts: tuple[str, ...] = ("identity",)
    seeds: tuple[int, ...] = (0,)
    probes: tuple[str, ...] = PROBES
    batches: int = 4
    batch_size: int = 32
    rank_batch_size: int = 256
    device: str = "cpu"
    tokens: int | None = None  # feed token ids of this length (a family whose models embed tokens)
    vocab: int | None = None  # token ids in [0, vocab); None: the model's input embedding

    def settings(self) -> dict:
        """Everything besides the cell's own axes that changes a cell's numbers. A cell file is
        reused only when it was computed with these settings (docs/sweep.md)."""
        return {"probes": sorted(self.probes), "batches": self.batches, "batch_size": self.batch_size,
                "rank_batch_size": self.rank_batch_size, "device": self.device, "tokens": self.tokens,
                "vocab": self.vocab, "data": "synthetic"}

    def cells(self) -> tuple[list[Cell], list[tuple[Cell, str]]]:
        """The valid cells, and the combinations skipped with the reason (e.g. a plain net with a
        scaled shortcut). Every cell is validated here, before anything runs."""
        for p in self.probes:
            if p not in PROBES:
                raise ResdiagError(f"unknown probe {p!r}: use {', '.join(PROBES)}")
        if not self.families or not self.depths or not self.seeds:
            raise ResdiagError("a sweep needs at least one family, one depth and one seed")
        from resdiag.run.common import check_seed

        for seed in self.seeds:
            check_seed(seed, "--seeds:")
        valid, skipped = [], []
        combos = itertools.product(self.families, self.depths, self.norms, self.shortcuts, self.seeds)
        for cell in dict.fromkeys(Cell(f, d, _norm_axis(f, n), sc, s) for f, d, n, sc, s in combos):
            try:
                cell.config()
            except ResdiagError as exc:
                if "unknown architecture" in str(exc) or "unknown shortcut" in str(exc) \
                        or "malformed shortcut" in str(exc) or "unknown norm" in str(exc):
                    raise
                skipped.append((cell, str(exc)))
                continue
            valid.append(cell)
        if not valid:
            reasons = "; ".join(sorted({r for _, r in skipped}))[:200]
            raise ResdiagError(f"the grid has no valid cell: {reasons}")
        return valid, skipped


def _norm_axis(family: str, norm: str) -> str:
    """``norm``, or NO_NORM for a family whose config has no norm field (its cells do not vary
    with --norms; an unknown family is left for ``Cell.config`` to refuse)."""
    import dataclasses

    from resdiag.zoo import resolve

    try:
        fields = {f.name for f in dataclasses.fields(resolve(family))}
    except ResdiagError:
        return norm
    return norm if "norm" in fields else NO_NORM


def parse_list(text: str, kind: type = str, what: str = "value") -> tuple:
    """``a,b,c`` -> a tuple; ints checked. Shortcut specs use ``;`` between items when they
    contain commas (``scale:0.5,0.5;identity``)."""
    sep = ";" if ";" in text else ","
    items = [t.strip() for t in text.split(sep) if t.strip()]
    if not items:
        raise ResdiagError(f"empty list of {what}s")
    if kind is int:
        try:
            items = [int(t) for t in items]
        except ValueError:
            raise ResdiagError(f"{what}s must be integers, got {text!r}") from None
    twice = sorted({str(t) for t in items if items.count(t) > 1})
    if twice:  # a repeated cell would be run again and counted again (seeds: 4 for one seed)
        raise ResdiagError(f"the {what}s {text!r} list {', '.join(twice)} more than once: give each once")
    return tuple(items)
