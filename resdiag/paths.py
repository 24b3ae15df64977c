"""Where resdiag writes, checked before it computes anything (docs/bad-inputs.md, "Outputs").

Every command declares its outputs (option, path, allowed suffixes) and its inputs (option, path);
``check_paths`` refuses, in one line each: a name without the right suffix, a missing folder, a
folder given for a file, a folder resdiag cannot write in (tried with a real temporary file, so a
read-only mount or a full quota is found before the work, not after it), two outputs on one file,
an output on a file the command reads, and an output folder in which the run would replace or delete
a file the command reads (``train --out run --overwrite --checkpoint run/checkpoint.pt``). Paths are
compared after resolving symbolic links and, for files that exist, by identity
(``os.path.samefile``: hard links too).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from resdiag.errors import ResdiagError

Output = tuple  # (option, path, suffixes; () = any) or (option, path, suffixes, appended)
Input = tuple[str, "Path | None"]
Folder = tuple[str, "Path | None", tuple[str, ...]]  # (option, folder, the names the run writes in it)


def check_output(option: str, path: Path, suffixes: tuple[str, ...] = (), append: bool = False) -> None:
    """One output file: its name, what is there now, its folder, and that the folder takes a new file.
    A symbolic link is checked where it leads (resdiag writes through it)."""
    check_suffix(option, path, suffixes)
    target = _through_link(option, path)
    if target.is_dir():
        raise ResdiagError(f"{option} {path} is a folder; give a file name")
    if path.exists() and not path.is_file() and not (append and path.is_char_device()):
        raise ResdiagError(f"{option} {path} is not a regular file (a pipe, socket or device): give the "
                           "name of a file")
    if append and path.exists():  # appended in place (no temporary file): it must open for writing
        _check_opens(option, path)
        return
    folder = target.parent if str(target.parent) else Path(".")
    check_folder(option, folder, path)
    _check_name_length(option, path, target, folder, append)


def _check_opens(option: str, path: Path) -> None:
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK))
    except OSError as exc:
        raise ResdiagError(f"{option} {path}: cannot write to it ({exc.strerror})") from None


def _through_link(option: str, path: Path) -> Path:
    """Where writing ``path`` lands: itself, or the end of its chain of symbolic links."""
    if not path.is_symlink():
        return path
    try:
        os.stat(path)
    except FileNotFoundError:
        pass  # a link to a file not yet there: written through, into the folder it names
    except OSError as exc:
        raise ResdiagError(f"{option} {path} is a symbolic link that cannot be followed "
                           f"({exc.strerror})") from None
    return Path(os.path.realpath(path))


# A replaced file is first written as .NAME.XXXXXXXX.tmp beside it and the old one kept as
# .NAME.XXXXXXXX.tmp.old until the group is final (resdiag.writes): 18 bytes more than NAME.
TEMPORARY_EXTRA = len("..XXXXXXXX.tmp.old")


def _check_name_length(option: str, path: Path, target: Path, folder: Path, append: bool) -> None:
    """That the longest name resdiag will create for this output fits the file system, so the write
    does not fail after the work is done."""
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    extra = 0 if append else TEMPORARY_EXTRA
    if len(os.fsencode(target.name)) + extra > limit:
        raise ResdiagError(f"{option} {path}: the file name is too long for {folder}: use at most "
                           f"{limit - extra} bytes")


def check_suffix(option: str, path: Path, suffixes: tuple[str, ...]) -> None:
    """That the file's name ends in one of ``suffixes`` and has something before it."""
    name = path.name.lower()
    if suffixes and not any(name.endswith(s) and len(name) > len(s) for s in suffixes):
        if name in suffixes:
            raise ResdiagError(f"{option} {path}: give a file name before {path.name} "
                               f"(like result{suffixes[0]})")
        raise ResdiagError(f"{option} {path}: use a file name ending in {' or '.join(suffixes)}")


def check_folder(option: str, folder: Path, path: Path | None = None) -> None:
    """That ``folder`` exists and a file can be created in it (a probe file, removed at once)."""
    shown = path if path is not None else folder
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ResdiagError(f"{option} {shown}: folder {folder} {what}")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".resdiag-probe.", suffix=".tmp")
    except OSError as exc:
        raise ResdiagError(f"{option} {shown}: cannot write in {folder} ({exc.strerror})") from None
    os.close(fd)
    os.unlink(probe)


def check_out_folder(option: str, out: Path) -> None:
    """An output folder (created if missing): not a file, and its nearest existing folder writable."""
    if out.is_symlink() and not out.exists():
        target = _through_link(option, out)  # a loop is refused here
        raise ResdiagError(f"{option} {out} is a symbolic link to {target}, which does not exist: create "
                           "that folder first, or give another")
    if out.exists() and not out.is_dir():
        raise ResdiagError(f"{option} {out} is a file; give a folder (it is created if missing)")
    for parent in (out, *out.absolute().parents):
        if parent.exists():
            if not parent.is_dir():
                raise ResdiagError(f"{option} {out}: {parent} is a file")
            check_folder(option, parent, out)
            return


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (symbolic and hard links followed)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_paths(outputs: Sequence[Output], inputs: Sequence[Input] = (),
                folders: Sequence[Folder] = ()) -> None:
    """Refuse outputs that could not be written, two outputs on one file, an output on an input, and
    an output folder whose run would replace or delete an input (a name of ``folders``' list, or a
    file below such a name)."""
    outs = [(out[0], Path(out[1]), out[2]) for out in outputs if out[1] is not None]
    ins = [(opt, Path(p)) for opt, p in inputs if p is not None]
    for out in outputs:
        if out[1] is not None:
            check_output(out[0], Path(out[1]), out[2], append=bool(out[3:] and out[3]))
    for i, (opt, path, _) in enumerate(outs):
        for other, p2, _ in outs[:i]:
            if same_file(path, p2):
                raise ResdiagError(f"{other} and {opt} both name {path}: give each output its own file")
        for inp, p2 in ins:
            if same_file(path, p2):
                raise ResdiagError(f"{opt} {path} is the file {inp} reads: write the output elsewhere")
    for opt, folder, names in folders:
        if folder is None:
            continue
        for inp, p2 in ins:
            hit = next((n for n in names if same_file(p2, Path(folder) / n) or below(p2, Path(folder) / n)),
                       None)
            if hit is not None:
                raise ResdiagError(f"{inp} {p2} is {Path(folder) / hit}, which the run in {opt} {folder} "
                                   "replaces or deletes: move it out of that folder, or choose another")


def below(path: Path, folder: Path) -> bool:
    """Whether ``path`` lies inside ``folder`` (symbolic links resolved)."""
    inner, outer = os.path.realpath(path), os.path.realpath(folder)
    return inner.startswith(outer.rstrip(os.sep) + os.sep)
