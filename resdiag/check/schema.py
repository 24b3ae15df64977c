"""The shape of a ``resdiag check`` configuration, as pydantic models: types, ranges, unknown keys.

pydantic does the checking (strict types, so ``seed = 1.5`` or ``batches = true`` is refused; NaN and
infinities refused; ``extra="forbid"`` refuses unknown keys). ``validate`` turns its errors into one
``ResdiagError`` line that names the file and the key, ``resdiag.toml: models.tiny.depth: must be
≥ 1, got 0``, with a "did you mean" for a misspelt key (difflib). docs/ci.md lists every key; its
type column is held to these models by tests/check/test_config.py.

What needs more than one key at a time (settings inherited by a model, the zoo's own checks, gates
whose probe a model does not run) is checked in ``resdiag.check.config``.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal, Union

from pydantic import (AfterValidator, BaseModel, ConfigDict, Discriminator, Field, PlainValidator, Tag,
                      ValidationError, create_model, model_validator)
from pydantic_core import PydanticCustomError

from resdiag.check.metrics import LIMITS, METRICS, PROBES
from resdiag.check.tolerance import parse_tolerance
from resdiag.errors import ResdiagError
from resdiag.run.spec_fields import ZOO_OPTIONS, LossName, ZooOption
from resdiag.thresholds_schema import METRIC_RANGES, Range

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")
_TOML_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "table",
               list: "array"}


def describe(value: Any) -> str:
    """A value as an error message shows it: its TOML type and, for scalars, the value."""
    kind = _TOML_TYPES.get(type(value), type(value).__name__)
    return f"{kind} {value!r}" if kind in ("boolean", "integer", "number", "string") else kind


def _rule(test, message: str):
    """An AfterValidator: ``message`` (with ``{got}``) unless ``test(value)``."""
    def check(value):
        if not test(value):
            raise PydanticCustomError("rule", message, {"got": describe(value)})
        return value
    return AfterValidator(check)


def _regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise PydanticCustomError("rule", "is not a valid regular expression ({why})", {"why": str(exc)})
    return text


def _data(text: str) -> str:
    from resdiag.data import parse_data  # numpy: imported only when a config sets data

    try:
        parse_data(text)
    except ResdiagError as exc:
        raise PydanticCustomError("rule", "is not usable: {why}", {"why": str(exc)}) from None
    return text


def _limit(bounds: Range):
    """A gate limit: a number inside ``bounds``, or ``false`` (returned as False) to turn it off."""
    def check(value):
        if value is False:
            return False
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PydanticCustomError("rule", "must be a number, or false to turn the gate off; got {got}",
                                      {"got": describe(value)})
        problem = bounds.problem(value)
        if problem:
            raise PydanticCustomError("rule", problem)
        return float(value)
    return PlainValidator(check)


def _tolerance(text: str):
    try:
        return parse_tolerance(text)
    except ValueError as exc:
        raise PydanticCustomError("rule", "is not a tolerance: {why}", {"why": str(exc)}) from None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


Probes = Annotated[list[Literal[PROBES]], Field(min_length=1),  # type: ignore[valid-type]
                   _rule(lambda p: len(set(p)) == len(p), "must list each probe once, got {got}")]
Shape = Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)]

# A gates table: one optional key per limit of resdiag/check/metrics.py, in the range of its metric.
Gates = create_model(
    "Gates", __base__=Strict, require_healthy=(Union[bool, None], None),
    **{key: (Annotated[Any, _limit(METRIC_RANGES[limit.metric])], None) for key, limit in LIMITS.items()})
Tolerances = create_model(
    "Tolerances", __base__=Strict,
    **{name: (Union[Annotated[str, AfterValidator(_tolerance)], None], None) for name in METRICS})


class Settings(Strict):
    """How the probes run: at the top level, and per model to override. None: not set here."""

    probes: Probes | None = None
    batches: Annotated[int, Field(ge=1)] | None = None
    batch_size: Annotated[int, Field(ge=1)] | None = None
    rank_batch_size: Annotated[int, Field(ge=2)] | None = None  # feature ranks need >= 2 samples
    mode: Literal["train", "eval"] | None = None
    data: Annotated[str, AfterValidator(_data)] | None = None


class Baseline(Strict):
    file: str | None = None
    tolerance: Tolerances = Tolerances()  # type: ignore[valid-type]


class _Model(Settings):
    name: Annotated[str, _rule(NAME.match, "must be letters, digits, '_' and '-', got {got}")]
    gates: Gates = Gates()  # type: ignore[valid-type]
    num_classes: Annotated[int, Field(ge=2)] | None = None


def _zoo_field(option: ZooOption):
    """The pydantic field of one zoo option (resdiag/run/spec_fields.py declares them)."""
    if option.type is bool:
        return (bool, False)
    kind: Any = option.type
    if option.minimum is not None:
        bound = {"gt": option.minimum} if option.exclusive else {"ge": option.minimum}
        kind = Annotated[option.type, Field(**bound)]
    return (Union[kind, None], None)


class _ArchKeys(_Model):
    arch: str
    init: str | None = None  # the zoo's init scheme (a config key only; docs/ci.md)
    input_shape: Shape | None = None


# A built-in model: the zoo's name and variant keys (docs/architectures.md), one field per ZOO_OPTIONS.
ArchModel = create_model("ArchModel", __base__=_ArchKeys, **{o.name: _zoo_field(o) for o in ZOO_OPTIONS})


class UserModel(_Model):
    """The user's ``module:callable``, fed float inputs (``input_shape``) or token ids (``tokens``)."""

    model: Annotated[str, _rule(lambda s: all(s.partition(":")[::2]) and ":" in s,
                                "must be package.module:callable, got {got}")]
    input_shape: Shape | None = None
    tokens: Annotated[int, Field(ge=1)] | None = None  # sequence length of int64 token ids
    vocab: Annotated[int, Field(ge=2)] | None = None  # token ids in [0, vocab); None: from the model
    blocks: Annotated[str, Field(min_length=1), AfterValidator(_regex)] | None = None
    loss: LossName = "cross_entropy"

    @model_validator(mode="after")
    def _one_input(self) -> UserModel:
        if (self.input_shape is None) == (self.tokens is None):
            raise PydanticCustomError("rule", "needs exactly one of 'input_shape' (float inputs) or "
                                      "'tokens' (token ids)")
        if self.vocab is not None and self.tokens is None:
            raise PydanticCustomError("rule", "'vocab' needs 'tokens': it is the range of the token ids")
        return self


def _kind(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return None
    found = [k for k in ("arch", "model") if k in entry]
    return found[0] if len(found) == 1 else None


ModelEntry = Annotated[Union[Annotated[ArchModel, Tag("arch")], Annotated[UserModel, Tag("model")]],
                       Discriminator(_kind, custom_error_type="model_kind", custom_error_message="")]


class ConfigFile(Settings):
    seed: Annotated[int, Field(ge=0)] = 0
    device: Annotated[str, _rule(_DEVICE.match, "must be auto, cpu, cuda or cuda:N, got {got}")] = "cpu"
    threads: Annotated[int, Field(ge=1)] | None = None
    deterministic: bool = False
    gates: Gates = Gates()  # type: ignore[valid-type]
    baseline: Baseline = Baseline()
    models: list[ModelEntry] = []


# ---- errors: one line naming the file and the key ----------------------------------------------

_TYPES = {"int_type": "an integer", "float_type": "a number", "bool_type": "a boolean",
          "string_type": "a string", "list_type": "an array", "model_type": "a table",
          "model_attributes_type": "a table", "dict_type": "a table"}
_BOUNDS = {"greater_than_equal": ("≥", "ge"), "greater_than": (">", "gt"),
           "less_than_equal": ("≤", "le"), "less_than": ("<", "lt")}


def validate(data: dict[str, Any], prefix: str, file: Any) -> ConfigFile:
    """The validated configuration, or a ResdiagError for its first error in file order, naming the
    keys of the others."""
    try:
        return ConfigFile.model_validate(data)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: _position(e["loc"], data))
        first = errors[0]
        message = key_error(file, prefix, first["loc"], data, _message(first))
        others = list(dict.fromkeys(key(prefix, e["loc"], data) or "(top level)" for e in errors[1:]))
        more = f" (and {len(others)} more: {', '.join(others)})" if others else ""
        raise ResdiagError(f"{message}{more}") from None


def key(prefix: str, loc: tuple, data: dict[str, Any]) -> str:
    """``models.tiny.depth`` (a model by its name when it has a usable one, else ``models[0]``)."""
    out, models = prefix.rstrip("."), data.get("models")
    for i, part in enumerate(_file_loc(loc)):
        if isinstance(part, int):
            at_model = i == 1 and loc[0] == "models" and isinstance(models, list) and part < len(models)
            entry = models[part] if at_model else None
            name = entry.get("name") if isinstance(entry, dict) else None
            out += f".{name}" if name is not None and _unique_name(models, name) else f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _position(loc: tuple, data: dict[str, Any]) -> tuple[int, ...]:
    """Where ``loc`` is in the file: TOML tables keep their keys in file order (dicts do too)."""
    out, node = [], data
    for part in _file_loc(loc):
        if isinstance(node, dict) and part in node:
            out.append(list(node).index(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        else:
            out.append(len(node) if isinstance(node, (dict, list)) else 0)  # a missing key: at the end
    return tuple(out)


def _file_loc(loc: tuple) -> tuple:
    """``loc`` without the union tag pydantic adds after ``models[i]``."""
    if len(loc) > 2 and loc[0] == "models" and loc[2] in ("arch", "model"):
        return loc[:2] + loc[3:]
    return loc


def key_error(file: Any, prefix: str, loc: tuple, data: dict[str, Any], what: str) -> ResdiagError:
    where = key(prefix, loc, data)
    return ResdiagError(f"{file}: {where}: {what}" if where else f"{file}: {what}")


def _unique_name(models: list[Any], name: Any) -> bool:
    """A model is named by its name in errors when the name is valid and no other model has it."""
    names = [m.get("name") for m in models if isinstance(m, dict)]
    return isinstance(name, str) and bool(NAME.match(name)) and names.count(name) == 1


def _message(error: dict[str, Any]) -> str:
    kind, ctx, got = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "extra_forbidden":
        return _unknown(error["loc"])
    if kind == "missing":
        return "missing required key"
    if kind == "model_kind":
        if not isinstance(got, dict):
            return f"must be a table, got {describe(got)}"
        return "needs exactly one of 'arch' (a built-in model) or 'model' (module:callable)"
    if kind == "list_type" and isinstance(got, dict):
        return "must be an array of tables (write [[...]] in TOML, not [...]), got a table"
    if kind in _TYPES:
        return f"must be {_TYPES[kind]}, got {describe(got)}"
    if kind in _BOUNDS:
        sign, name = _BOUNDS[kind]
        return f"must be {sign} {ctx[name]:g}, got {got}"
    if kind == "finite_number":
        return f"must be a finite number, got {got}"
    if kind == "literal_error":
        return f"must be {ctx['expected']}, got {describe(got)}"
    if kind in ("too_short", "string_too_short"):
        return f"must not be empty, got {describe(got)}"
    return error["msg"][0].lower() + error["msg"][1:]  # PydanticCustomError: already ours


_OWN = {"arch": ArchModel, "model": UserModel}


def _unknown(loc: tuple) -> str:
    """``unknown key (did you mean 'batch_size'?)``, or where the key belongs if it is another kind's."""
    *parent, name = loc
    fields = _fields_at(tuple(parent))
    if len(parent) == 3 and parent[0] == "models":
        other = "model" if parent[2] == "arch" else "arch"
        if name in _OWN[other].model_fields:
            what = "built-in models ('arch')" if other == "arch" else "your own models ('model')"
            return f"applies to {what} only"
    if not parent and (name in ArchModel.model_fields or name in UserModel.model_fields):
        return "unknown key at the top level: it belongs in a [[models]] table"
    close = difflib.get_close_matches(str(name), sorted(fields), n=1)
    return "unknown key" + (f" (did you mean '{close[0]}'?)" if close else "")


def _fields_at(parent: tuple) -> set[str]:
    """The keys of the table at ``parent`` (a pydantic loc without the final key)."""
    parts = [p for p in parent if not isinstance(p, int)]
    model: type[BaseModel] = ConfigFile
    if parts[:1] == ["models"]:
        model, parts = _OWN[parts[1]], parts[2:]  # parts[1] is the union tag
    for part in parts:
        model = model.model_fields[part].annotation
    return set(model.model_fields)
