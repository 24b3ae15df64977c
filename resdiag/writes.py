"""How resdiag writes a group of outputs: every file, or none (docs/bad-inputs.md, "Outputs").

``write_all`` takes the payloads a command has prepared (computed and rendered already, so nothing
is left to fail but the disk) and writes them in two phases:

1. **Stage.** Each replaced file is written to a temporary file beside it and flushed to disk. A
   failure here (a full disk, a read-only folder) removes the temporary files; nothing is changed.
2. **Commit.** Each temporary file is renamed over its target (``os.replace``), after the old
   target is kept under a hard link; an appended file (``$GITHUB_STEP_SUMMARY``) has its old size
   noted and the text appended. If any of these fails, the ones already done are undone in reverse
   order: the old files put back, new files removed, appended files truncated to their old size.

``one_group()`` collects the files that ``write`` is asked for inside a block (a JSON result, a
figure drawn by matplotlib) and hands them to ``write_all`` when the block ends; a block that
raises writes none of them. Outside a group, ``write`` writes one file the same way.

SIGINT and SIGTERM are held while the commit or its undo runs (``signals_deferred``): a Ctrl-C
there undoes the commit, then stops the command, so it cannot leave half a group. A path that is
a symbolic link is written through to its target (``resdiag.results.atomic_write`` is this ``write``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from resdiag.errors import ResdiagError


@dataclass(frozen=True, kw_only=True)
class Write:
    """One output of a group: ``data`` replaces ``path`` (or is appended to it, ``append``)."""

    path: Path
    data: str | bytes
    append: bool = False


@contextlib.contextmanager
def signals_deferred() -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM while the block runs; deliver them, in order, when it ends. Yields the
    list of signals held so far, so the block can see that it is to stop. Outside the main thread
    (where Python runs no handlers) the block runs as it is."""
    pending: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    old = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum))
           for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield pending
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        for sig in pending:
            signal.raise_signal(sig)  # now handled as usual: KeyboardInterrupt, resdiag's SIGTERM


_GROUPS: list[list[Write]] = []


@contextlib.contextmanager
def one_group() -> Iterator[list[Write]]:
    """Collect every ``write`` made inside the block; write them all (or none) when it ends."""
    group: list[Write] = []
    _GROUPS.append(group)
    try:
        yield group
    finally:
        _GROUPS.remove(group)
    write_all(group)


def write(path: Path, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` atomically, or, inside ``one_group()``, as part of the group."""
    if _GROUPS:
        _GROUPS[-1].append(Write(path=Path(path), data=data))
    else:
        write_all([Write(path=Path(path), data=data)])


def write_all(writes: Sequence[Write]) -> None:
    """Write every file of ``writes`` or none of them (module docstring); a ResdiagError names the
    path that failed."""
    # a replaced link is written through to its target; an appended file is opened where it is (the
    # kernel follows the link, /dev/stderr included)
    writes = [w if w.append else Write(path=_through(w.path), data=w.data) for w in writes]
    staged: dict[int, str] = {}
    try:
        for i, w in enumerate(writes):
            if not w.append:
                staged[i] = _attempt(w.path, _stage, w)
        with signals_deferred() as pending:
            _commit(writes, staged, pending)
    finally:
        for tmp in staged.values():
            Path(tmp).unlink(missing_ok=True)


def _commit(writes: list[Write], staged: dict[int, str], pending: list[int]) -> None:
    """Rename or append each write in turn; undo the done ones if one fails or a signal is held."""
    undo: list[_Undo] = []
    try:
        for i, w in enumerate(writes):
            if w.append:
                undo.append(_attempt(w.path, _append, w))
            else:
                undo.append(_attempt(w.path, _replace, w.path, staged.pop(i)))
        if pending:
            raise KeyboardInterrupt  # stopped during the commit: undone here, then delivered
    except BaseException:
        for step in reversed(undo):
            step()
        raise
    for step in undo:
        step.keep()


def _attempt(path: Path, fn, *args):
    """``fn(*args)``, its OSError turned into the one-line error that names ``path``."""
    try:
        return fn(*args)
    except OSError as exc:
        raise ResdiagError(f"cannot write {path}: {exc.strerror or exc}") from None


def _through(path: Path) -> Path:
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _stage(w: Write) -> str:
    """A temporary file beside ``w.path`` holding ``w.data``, on disk, with the usual permissions."""
    fd, tmp = tempfile.mkstemp(dir=w.path.parent, prefix=f".{w.path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if isinstance(w.data, bytes) else "w", encoding=_enc(w.data)) as fh:
            fh.write(w.data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _enc(data: str | bytes) -> str | None:
    return None if isinstance(data, bytes) else "utf-8"


class _Undo:
    """What puts one committed file back: called to undo, ``keep()`` to make the commit final."""

    def __init__(self, undo: Callable[[], None], keep: Callable[[], None] = lambda: None):
        self._undo, self.keep = undo, keep

    def __call__(self) -> None:
        try:
            self._undo()
        except OSError:
            pass  # the disk refuses even that: nothing more can be done here


def _replace(path: Path, tmp: str) -> _Undo:
    """Rename ``tmp`` over ``path``; the old ``path`` is kept under a hard link (a copy where the
    file system has none) until the group is final."""
    old = f"{tmp}.old" if path.exists() else None
    try:
        if old is not None:
            try:
                os.link(path, old)
            except OSError:
                shutil.copy2(path, old)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        if old is not None:
            Path(old).unlink(missing_ok=True)
        raise
    if old is None:
        return _Undo(lambda: path.unlink(missing_ok=True))
    return _Undo(lambda: os.replace(old, path), lambda: Path(old).unlink(missing_ok=True))


def _append(w: Write) -> _Undo:
    """Append ``w.data`` to ``w.path`` (created if missing); undone by truncating to the old size."""
    size = w.path.stat().st_size if w.path.exists() else None
    data = w.data.encode("utf-8") if isinstance(w.data, str) else w.data
    fd = os.open(w.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    undo = _Undo(lambda: w.path.unlink(missing_ok=True) if size is None else os.truncate(w.path, size))
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if stat.S_ISREG(os.fstat(fd).st_mode):  # a terminal or /dev/stderr has nothing to sync
            os.fsync(fd)
    except BaseException:
        undo()
        raise
    finally:
        os.close(fd)
    return undo
