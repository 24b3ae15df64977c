"""What the resdiag process owes the shell around it (docs/bad-inputs.md, "Faults").

- **A closed stdout is not an error of the diagnosis.** ``resdiag grad-flow ... --json o.json | head``
  closes the pipe early; the command must still write its files and exit with its own code.
  ``SafeStdout`` turns the first ``BrokenPipeError`` into silence: stdout is pointed at
  ``/dev/null`` (as the Python docs advise for SIGPIPE) and the command carries on.
- **SIGTERM is Ctrl-C.** Schedulers and CI send SIGTERM; it raises ``KeyboardInterrupt`` like
  SIGINT, so the same clean-up runs (temporary files removed, worker processes ended), and the exit
  code is 143 (128 + SIGTERM) instead of 130.
- **A closed stream is not an error either.** Started with ``>&-`` or ``2>&-``, Python has no
  ``sys.stdout`` or ``sys.stderr`` (None); ``Guard`` puts ``/dev/null`` in their place for the
  command, so the files are still written and the exit code is the command's own.
- **A user model's threads do not hold the process.** After the command, a non-daemon thread the
  user's code started would keep Python waiting forever; ``stray_threads`` finds them, and the
  entry point then exits without waiting (one warning line).
"""

from __future__ import annotations

import os
import signal
import sys
import threading

EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Python was when it arrived: every KeyboardInterrupt clean-up runs."""


received: list[int] = []  # the SIGTERMs of the running command (typer reports any interrupt as 130)


def _on_sigterm(signum, frame):
    received.append(signum)
    raise Terminated()


class SafeStdout:
    """A stdout that goes quiet, instead of raising, once its reader has gone."""

    def __init__(self, stream):
        self._stream = stream
        self.broken = False

    def _closed(self) -> None:
        self.broken = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())  # what is still buffered drains into /dev/null
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._closed()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._closed()

    def __getattr__(self, name):  # isatty, fileno, encoding... as the real stream
        return getattr(self._stream, name)


class Guard:
    """Installs the SIGINT/SIGTERM handlers and the safe stdout for one command; restores them."""

    def __enter__(self) -> Guard:
        self.stdout, self.stderr = sys.stdout, sys.stderr
        self.devnull = None
        if sys.stdout is None or sys.stderr is None:  # started with >&- or 2>&-
            self.devnull = open(os.devnull, "w")
            sys.stderr = sys.stderr if sys.stderr is not None else self.devnull
        sys.stdout = SafeStdout(sys.stdout if sys.stdout is not None else self.devnull)
        self.handlers = {}
        received.clear()
        if threading.current_thread() is threading.main_thread():
            for sig, handler in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, _on_sigterm)):
                self.handlers[sig] = signal.signal(sig, handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.handlers.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if isinstance(sys.stdout, SafeStdout):
            sys.stdout.flush()
        sys.stdout, sys.stderr = self.stdout, self.stderr
        if self.devnull is not None:
            self.devnull.close()


def stray_threads() -> list[threading.Thread]:
    """Non-daemon threads still running besides the main one (started by the user's code; the idle
    workers of resdiag's own pools, named ``resdiag-*``, are not strays)."""
    return [t for t in threading.enumerate()
            if t is not threading.main_thread() and t.is_alive() and not t.daemon
            and not t.name.startswith("resdiag-")]


def exit_now(code: int) -> None:
    """Exit without waiting for stray threads: flush what was printed, then ``os._exit``."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def early_interrupts() -> None:
    """Ctrl-C while the command is still importing (the first few tenths of a second) exits 130 with
    one line instead of an import traceback. Only for the ``resdiag`` program itself: a library
    user's interrupts are left alone. ``Guard`` replaces it when the command starts."""
    program = sys.argv[0] if sys.argv else ""
    module = os.path.join("resdiag", "__main__.py")
    if os.path.basename(program) != "resdiag" and not program.endswith(module):
        return
    if threading.current_thread() is not threading.main_thread():
        return

    def interrupted(signum, frame):
        if sys.stderr is not None:
            sys.stderr.write("resdiag: interrupted\n" if signum == signal.SIGINT else "resdiag: terminated\n")
        os._exit(130 if signum == signal.SIGINT else EXIT_TERMINATED)

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
