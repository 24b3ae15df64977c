"""The run's JSON-lines file (``train.jsonl``, docs/train.md): one object per line, appended and
flushed as the run goes, so a killed run keeps every complete line. A line is written with SIGINT
and SIGTERM held, so Ctrl-C or SIGTERM never leaves half of one (only SIGKILL or a crash of the
machine can; ``read`` skips such a line).

Every line has ``type`` ("start", "step", "probe" or "end") and ``step``. Resuming at step n keeps
the lines of steps before n and drops the rest (steps the interrupted run did after its last
checkpoint, which the resumed run does again).
"""

from __future__ import annotations

import json
from pathlib import Path

from resdiag.results import atomic_write, encode
from resdiag.writes import signals_deferred

SCHEMA = "resdiag.train"
VERSION = 1
FILE = "train.jsonl"


def dumps(line: dict) -> str:
    return json.dumps(encode(line), allow_nan=False)


def read(path: Path) -> list[dict]:
    """Every complete line of ``path`` (a torn last line, from a killed run, is skipped)."""
    out = []
    for text in Path(path).read_text().splitlines():
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(line, dict) and "type" in line and "step" in line:
            out.append(line)
    return out


class RunLog:
    """Appends lines to ``path`` (rank 0) and, for debugging, to a per-process ``mirror``."""

    def __init__(self, path: Path | None, mirror: Path | None = None):
        self.path, self.mirror = path, mirror
        self._files = []
        self.lines: list[dict] = []  # what this process wrote, for callers of the library

    def open(self, keep_before: int | None) -> None:
        """Start writing: keep the existing lines of steps < ``keep_before`` (a resumed run), or
        start an empty file (None)."""
        if self.path is not None:
            if keep_before is not None and self.path.is_file():
                kept = [dumps(x) + "\n" for x in read(self.path) if x["step"] < keep_before]
                atomic_write(self.path, "".join(kept))
                self._files.append(open(self.path, "a"))
            else:
                self._files.append(open(self.path, "w"))
        if self.mirror is not None:
            self._files.append(open(self.mirror, "w"))

    def write(self, line: dict) -> None:
        text = dumps(line) + "\n"
        with signals_deferred():  # Ctrl-C or SIGTERM lands between lines, never inside one
            for fh in self._files:
                fh.write(text)
                fh.flush()
        self.lines.append(line)

    def close(self) -> None:
        for fh in self._files:
            fh.close()
        self._files.clear()
