"""Strict reading of one TOML table: typed keys with defaults, and no key left unread.

Every error names the file and the full key (``tool.resdiag.models[0].depth``), so a typo fails
the build instead of being ignored.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any

from resdiag.errors import ResdiagError

_MISSING = object()
_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
               dict: "a table", list: "an array"}


def describe(value: Any) -> str:
    """A value as an error message shows it: its TOML type and, for scalars, the value."""
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "table",
            list: "array"}.get(type(value), type(value).__name__)
    return f"{kind} {value!r}" if kind in ("boolean", "integer", "number", "string") else kind


class Table:
    """One table of the config. ``take`` each known key, then ``finish`` to refuse the rest."""

    def __init__(self, data: dict[str, Any], path: str, file: Path):
        self.data, self.path, self.file = data, path, file
        self._read: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}{name}"

    def error(self, name: str, what: str) -> ResdiagError:
        return ResdiagError(f"{self.file}: '{self.key(name)}' {what}")

    def has(self, name: str) -> bool:
        return name in self.data

    def take(self, name: str, kind: type, default: Any = _MISSING) -> Any:
        """The value of ``name`` checked to be of ``kind`` (int is accepted for float)."""
        self._read.add(name)
        if name not in self.data:
            if default is _MISSING:
                raise ResdiagError(f"{self.file}: missing key '{self.key(name)}'")
            return default
        return self.check(name, self.data[name], kind)

    def check(self, name: str, value: Any, kind: type) -> Any:
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise self.error(name, f"must be {_TYPE_NAMES[kind]}, got {describe(value)}")
        if kind is float and not math.isfinite(value):
            raise self.error(name, f"must be a finite number, got {value}")
        return value

    def take_list(self, name: str, kind: type, default: Any = _MISSING) -> Any:
        """An array whose every item is of ``kind``, as a tuple."""
        value = self.take(name, list, default)
        if value is default:
            return value
        return tuple(self.check(f"{name}[{i}]", v, kind) for i, v in enumerate(value))

    def table(self, name: str) -> Table:
        """A sub-table (empty if absent), to be read and finished by the caller."""
        return Table(self.take(name, dict, {}), f"{self.key(name)}.", self.file)

    def tables(self, name: str) -> list[Table]:
        """An array of tables (``[[models]]``)."""
        items = self.take(name, list, [])
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.error(f"{name}[{i}]", f"must be a table, got {describe(item)}")
            out.append(Table(item, f"{self.key(name)}[{i}].", self.file))
        return out

    def finish(self) -> None:
        """Refuse any key that was not read, suggesting the nearest known one."""
        for name in self.data:
            if name not in self._read:
                close = difflib.get_close_matches(name, sorted(self._read), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ResdiagError(f"{self.file}: unknown key '{self.key(name)}'{hint}")
