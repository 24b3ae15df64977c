"""The run folder of ``resdiag train``: one writer at a time, a run replaced only by a run, and
nothing left by a run that never reached its first checkpoint (docs/security.md, "What resdiag writes").

- **Lock.** A second ``train`` into the same ``--out`` would interleave two runs in one
  ``train.jsonl``; the folder itself is locked (``fcntl.flock`` on its descriptor, released by the
  kernel when the process ends, however it ends) and the second run is refused.
- **--overwrite replaces a run only when the new one has its first checkpoint.** The old run's
  files are moved aside into ``.replaced/`` first; once the new ``checkpoint.pt`` exists they are
  deleted. If the new run stops before that (an error, Ctrl-C, SIGTERM), the new files are removed
  and the old run is put back, so ``--resume`` never splices two runs.
- **No checkpoint, no trace.** A run that ends in any way (an error, Ctrl-C, SIGTERM) before its
  first checkpoint cannot be resumed, so it keeps nothing: the files it created are removed, and
  the folder too if this run created it. From the first checkpoint on, the folder is resumable
  state: ``checkpoint.pt`` and the lines of ``train.jsonl`` up to it (``--resume`` drops the rest).
- **Every file is whole.** The checkpoint and the figures are written to a temporary file and
  renamed (``resdiag.results.atomic_write``, ``resdiag.writes.write``); each line of ``train.jsonl`` is appended with Ctrl-C
  and SIGTERM held (``resdiag.writes.signals_deferred``), so a stop never tears a line. Temporary
  files left by a run killed outright (SIGKILL) are removed by the next run in the folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from resdiag.errors import ResdiagError

ASIDE = ".replaced"
RUN_FILES = ("train.jsonl", "checkpoint.pt", "loss.png", "gradflow.png", "rank.png")
WRITTEN = (*RUN_FILES, ASIDE)  # every name a run writes, replaces or deletes in its folder


@contextlib.contextmanager
def run_folder(out: Path, *, replace: bool, checkpoint: str = "checkpoint.pt") -> Iterator:
    """Create and lock ``out`` for one run; with ``replace``, move the run it holds aside until the
    new run's first checkpoint (module docstring). Yields ``settle``, to call after each step: it
    drops the old run as soon as the new checkpoint exists."""
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResdiagError(f"--out {out}: cannot create it ({exc.strerror})") from None
    lock = _lock(out)
    aside = out / ASIDE

    def settle() -> None:
        if aside.exists() and (out / checkpoint).exists():
            shutil.rmtree(aside, ignore_errors=True)

    try:
        _put_back(out, aside, checkpoint)  # left by a replacement killed outright (SIGKILL)
        _remove_temporaries(out)
        if replace:
            aside.mkdir()
            for name in RUN_FILES:
                if (out / name).exists():
                    os.rename(out / name, aside / name)
        had = {name for name in RUN_FILES if (out / name).exists()}
        try:
            yield settle
        except BaseException:
            if aside.exists():
                _put_back(out, aside, checkpoint)
            elif checkpoint not in had and not (out / checkpoint).exists():
                _remove_run(out, had, created)
            raise
        settle()
    finally:
        lock.close()


def _remove_run(out: Path, had: set[str], created: bool) -> None:
    """A run that stopped before its first checkpoint: remove the files it created (and the folder
    if it created that too)."""
    for name in RUN_FILES:
        if name not in had:
            (out / name).unlink(missing_ok=True)
    if created:
        shutil.rmtree(out, ignore_errors=True)


def _remove_temporaries(out: Path) -> None:
    """The temporary files of a run killed in the middle of a write (``.NAME.*.tmp``)."""
    for name in RUN_FILES:
        for stale in out.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)


def _put_back(out: Path, aside: Path, checkpoint: str) -> None:
    """Settle a replacement: keep the new run if it has a checkpoint, else put the old one back."""
    if not aside.is_dir():
        return
    if not (out / checkpoint).exists():
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
            if (aside / name).exists():
                os.rename(aside / name, out / name)
    shutil.rmtree(aside, ignore_errors=True)


class _Lock:
    def __init__(self, fd: int):
        self.fd = fd

    def close(self) -> None:
        os.close(self.fd)  # closing the descriptor releases the lock


def _lock(out: Path) -> _Lock:
    import fcntl

    fd = os.open(out, os.O_RDONLY)  # the folder itself is locked: no lock file left behind
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise ResdiagError(f"--out {out} is in use by another 'resdiag train': wait for it to end "
                               "or choose another folder") from None
        raise
    return _Lock(fd)
