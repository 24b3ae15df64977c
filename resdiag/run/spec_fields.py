"""What a target description takes, declared once for the CLI and for ``check`` configs.

The zoo's variant options (``--depth``/``depth``, ``--shortcut``/``shortcut`` ...) are one list,
``ZOO_OPTIONS``: ``resdiag.cli.options.ModelOptions`` (the command-line options) and
``resdiag.check.schema.ArchModel`` (a built-in model's keys in a check config) are both built from
it, and ``zoo_config`` turns the values of either into the validated zoo config. The loss names are
``LossName``. Plain data (no torch, typer or pydantic): ``resdiag --help`` and the check schema
import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

LossName = Literal["cross_entropy", "mse", "model"]  # docs/architectures.md, "Inputs and outputs"
LOSSES: tuple[str, ...] = get_args(LossName)


@dataclass(frozen=True, kw_only=True)
class ZooOption:
    """One variant option of the zoo's configs (resdiag.zoo.config), as users give it."""

    name: str  # the config field; ``--name-with-dashes`` on the command line
    type: type  # int, float, str or bool; every option but a bool may be left unset (None)
    minimum: float | None = None  # the smallest admissible value, if bounded below
    exclusive: bool = False  # whether ``minimum`` itself is refused


ZOO_OPTIONS: tuple[ZooOption, ...] = (
    ZooOption(name="depth", type=int, minimum=1),
    ZooOption(name="plain", type=bool),
    ZooOption(name="shortcut", type=str),
    ZooOption(name="block", type=str),
    ZooOption(name="projection", type=str),
    ZooOption(name="placement", type=str),
    ZooOption(name="norm", type=str),
    ZooOption(name="width", type=float, minimum=0, exclusive=True),
    ZooOption(name="init_gain", type=float, minimum=0),
    ZooOption(name="branch_gain", type=float, minimum=0),
)
ZOO_NAMES: tuple[str, ...] = tuple(o.name for o in ZOO_OPTIONS)


def default(option: ZooOption) -> Any:
    """An option that is not given: False for a flag, else None (the zoo's own default)."""
    return False if option.type is bool else None


def zoo_config(arch: str | None, values: Mapping[str, Any], **fields: Any):
    """The validated zoo config of ``arch`` from the ``ZOO_OPTIONS`` in ``values`` (None: not given)
    and further config ``fields`` (``num_classes``, ``input_shape``, ``init`` ...).

    ``shortcut`` is parsed (``scale:0.5`` ...) and ``projection`` upper-cased, as the CLI takes them."""
    from resdiag.zoo import parse_shortcut, resolve

    given = {o.name: values.get(o.name, default(o)) for o in ZOO_OPTIONS}
    depth, plain = given.pop("depth"), given.pop("plain")
    if given["shortcut"] is not None:
        given["shortcut"] = parse_shortcut(given["shortcut"])
    given["projection"] = given["projection"].upper() if given["projection"] else None
    return resolve(arch, depth, plain, **given, **fields)
