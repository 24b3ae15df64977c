"""Finding and reading the TOML configuration: ``[tool.resdiag]`` or a ``resdiag.toml``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from resdiag.errors import ResdiagError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PYPROJECT = "pyproject.toml"


def find_config(start: Path) -> Path:
    """The nearest ``pyproject.toml`` in ``start`` or a folder above it that has ``[tool.resdiag]``."""
    for folder in (start, *start.parents):
        candidate = folder / PYPROJECT
        if candidate.is_file() and "resdiag" in _tool(read_toml(candidate)):
            return candidate
    raise ResdiagError(f"no [tool.resdiag] in a pyproject.toml in {start} or above it: "
                       "add one, or give --config FILE (docs/ci.md)")


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed document; a file that is missing, a folder, unreadable, not UTF-8 or not TOML is a
    ResdiagError naming the file. A UTF-8 byte-order mark, which Windows editors write, is skipped."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ResdiagError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ResdiagError(f"config file {path} is a folder; give a .toml file") from None
    except PermissionError:
        raise ResdiagError(f"cannot read config file {path}: permission denied") from None
    except OSError as exc:
        raise ResdiagError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")  # TOML is UTF-8; "-sig" drops a leading byte-order mark
    except UnicodeDecodeError as exc:
        raise ResdiagError(f"{path}: not UTF-8 text (byte {exc.start}): TOML files are UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ResdiagError(f"{path}: invalid TOML: {exc}") from None


def resdiag_section(path: Path) -> tuple[dict[str, Any], str]:
    """The resdiag table of a config file and the prefix its keys are named with in errors.

    In ``pyproject.toml`` it is ``[tool.resdiag]``; any other file (``resdiag.toml``) holds the keys
    at its top level, as ruff's ``ruff.toml`` does.
    """
    doc = read_toml(path)
    if path.name != PYPROJECT:
        if "tool" in doc:
            raise ResdiagError(f"{path}: tool: unknown key: a {path.name} holds resdiag's keys at its top "
                               "level, without [tool.resdiag] (that table is for pyproject.toml)")
        return doc, ""
    section = _tool(doc).get("resdiag")
    if section is None:
        raise ResdiagError(f"{path}: no [tool.resdiag] table (docs/ci.md)")
    if not isinstance(section, dict):
        raise ResdiagError(f"{path}: tool.resdiag: must be a table, got {type(section).__name__}")
    return section, "tool.resdiag."


def _tool(doc: dict[str, Any]) -> dict[str, Any]:
    tool = doc.get("tool", {})
    return tool if isinstance(tool, dict) else {}
