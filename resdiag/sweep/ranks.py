"""A sweep spread over the processes of a ``torchrun`` job (docs/sweep.md, "torchrun").

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and MASTER_ADDR/MASTER_PORT. With WORLD_SIZE > 1 every
process joins the job's gloo process group and talks through the job's key-value store (the
``TCPStore`` torch.distributed's rendezvous gives): rank 0 lists the pending cells once, every rank
claims the next one with an atomic ``add`` on one counter until none are left, and each rank says at
the end whether it finished. While a rank waits for the others it watches a heartbeat counter that
every rank's background thread bumps, so a rank that was killed, or whose machine was lost, is found
within ``timeout`` seconds, however long a healthy cell takes; a collective barrier cannot tell a slow
rank from a dead one. Any failure is one ``ResdiagError`` line on every rank, never a hang.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from resdiag.errors import ResdiagError

_PREFIX = "resdiag-sweep/"
KEPT = "the cells done are kept: run the same command again to finish"


class Solo:
    """One process: every hook is trivial, so ``run_sweep`` has a single path."""

    rank, world, local_world, active = 0, 1, 1, False
    main = True

    def agree(self, error: str | None) -> None:
        if error:
            raise ResdiagError(error)

    def share(self, make: Callable[[], list[str]]) -> list[str]:
        return make()

    def claims(self, n: int) -> Iterator[int]:
        yield from range(n)

    def failed(self, message: str) -> None:
        pass

    def finished(self) -> None:
        pass


class Team:
    """This process's side of a multi-process sweep (``join`` makes one)."""

    active = True

    def __init__(self, *, store, rank: int, world: int, local_world: int, timeout: float):
        self.store, self.rank, self.world, self.timeout = store, rank, world, timeout
        self.local_world = local_world  # processes on this machine: they share its CPU cores
        self.main = rank == 0
        self.dead: set[int] = set()  # ranks found silent: no one waits for them again
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._beating, args=(store.clone(),), daemon=True)
        self._beat.start()

    # ------------------------------------------------------------------ the store, errors named
    def _call(self, op: str, *args):
        try:
            return getattr(self.store, op)(*args)
        except (RuntimeError, OSError) as exc:  # DistStoreError/DistNetworkError are RuntimeErrors
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise ResdiagError(f"rank {self.rank}: lost the job's store at MASTER_ADDR:MASTER_PORT "
                               f"(rank 0 or torchrun has gone: {first})") from None

    def _set(self, key: str, value: str) -> None:
        self._call("set", _PREFIX + key, value)

    def _get(self, key: str) -> str | None:
        if not self._call("check", [_PREFIX + key]):
            return None
        return self._call("get", _PREFIX + key).decode()

    def _beating(self, store) -> None:
        every = min(1.0, self.timeout / 5)
        while not self._stop.wait(every):
            try:
                store.add(f"{_PREFIX}beat/{self.rank}", 1)
            except (RuntimeError, OSError):
                return  # the store is gone: the main thread finds out on its next call

    def _wait(self, keys: dict[int, str], *, abort: bool = True) -> dict[int, str]:
        """Each rank's key once it is set. A rank whose heartbeat stands still for ``timeout``
        seconds while its key is missing has died: a ResdiagError naming it. ``abort``: a failed
        rank's message (``failed``) ends the wait as a ResdiagError too."""
        got: dict[int, str] = {}
        beats: dict[int, tuple[int, float]] = {}
        pause = 0.02
        while True:
            for r, key in keys.items():
                if r not in got and (value := self._get(key)) is not None:
                    got[r] = value
            if len(got) == len(keys):
                return got
            if abort and (why := self._get("abort")) is not None:
                raise ResdiagError(f"{why}; {KEPT}")
            now = time.monotonic()
            for r in keys.keys() - got.keys():
                beat = self._call("add", f"{_PREFIX}beat/{r}", 0)
                last = beats.get(r)
                if last is None or last[0] != beat:
                    beats[r] = (beat, now)
                elif now - last[1] > self.timeout:
                    self.dead.add(r)
                    raise ResdiagError(f"rank {r} stopped answering ({self.timeout:g} s without a sign of "
                                       f"life: killed, or its machine lost); {KEPT}")
            time.sleep(pause)
            pause = min(0.5, pause * 2)

    # ------------------------------------------------------------------ what run_sweep asks
    def agree(self, error: str | None) -> None:
        """Every rank checked the grid and its outputs; raise the first rank's error on every rank."""
        self._set(f"checked/{self.rank}", error or "")
        got = self._wait({r: f"checked/{r}" for r in range(self.world)})
        bad = [(r, e) for r, e in sorted(got.items()) if e]
        if bad:  # this rank's own error as it is; another's named by its rank
            mine = got[self.rank]
            raise ResdiagError(mine or f"rank {bad[0][0]}: {bad[0][1]}")

    def share(self, make: Callable[[], list[str]]) -> list[str]:
        """Rank 0's ``make()`` on every rank (the pending cells: one list, so one claim per cell)."""
        if self.main:
            items = make()
            self._set("todo", json.dumps(items))
            return items
        return json.loads(self._wait({0: "todo"})[0])

    def claims(self, n: int) -> Iterator[int]:
        """Indices into the shared list, each handed to exactly one rank (an atomic counter), until
        the list is used up or a rank has failed."""
        while self._get("abort") is None:
            i = int(self._call("add", _PREFIX + "next", 1)) - 1
            if i >= n:
                return
            yield i

    def failed(self, message: str) -> None:
        """This rank failed: the others stop claiming cells, and rank 0 reports ``message``."""
        self._call("compare_set", _PREFIX + "abort", "", message)  # the first failure is the one told
        self._set(f"status/{self.rank}", "failed")

    def finished(self) -> None:
        """This rank has no more cells; rank 0 waits until every rank has said the same."""
        self._set(f"status/{self.rank}", "ok")
        if self.main:
            self._wait({r: f"status/{r}" for r in range(self.world)})
            if (why := self._get("abort")) is not None:  # a rank failed after the last cell was claimed
                raise ResdiagError(f"{why}; {KEPT}")

    def close(self, error: BaseException | None) -> None:
        """The end: rank 0 tells the others how the sweep ended (after the summary is written) and
        waits until they have read it; the others raise if rank 0 says it failed."""
        try:
            if error is not None:
                self.failed(f"rank {self.rank}: {describe(error)}")
            if self.main:  # the first failure, with its rank and cell (``failed``), is what others say
                self._set("final", "" if error is None else self._get("abort") or describe(error))
            if isinstance(error, KeyboardInterrupt):
                return  # Ctrl-C or SIGTERM (torchrun ending the job): leave now, wait for no one
            if self.main:
                try:  # keep the store up (rank 0 holds it outside torchrun) until all have read it
                    self._wait({r: f"bye/{r}" for r in range(1, self.world) if r not in self.dead},
                               abort=False)
                except ResdiagError:
                    if error is not None:
                        raise
                    # every rank had finished and the summary is written: the sweep is complete
                return
            final = self._wait({0: "final"}, abort=False)[0]
            self._set(f"bye/{self.rank}", "")
            if final and error is None:
                raise ResdiagError(final if final.startswith("rank ") else f"rank 0: {final}")
        finally:
            self._stop.set()


def describe(error: BaseException) -> str:
    if isinstance(error, ResdiagError):
        return str(error)
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    return f"{type(error).__name__}: {error}".splitlines()[0][:200]


@contextlib.contextmanager
def join(*, world: int, rank: int, local_world: int, timeout: float) -> Iterator[Team]:
    """Join the torchrun job's gloo process group (bounded by ``timeout``) for the duration; leave
    it at the end whatever happened. Only with WORLD_SIZE > 1."""
    import torch.distributed as dist

    if dist.is_initialized():
        raise ResdiagError("a sweep under torchrun joins the job itself: call it outside an "
                           "initialised process group")
    span = timedelta(seconds=timeout)
    try:
        store, got_rank, got_world = next(dist.rendezvous("env://", timeout=span))
        dist.init_process_group("gloo", store=store, rank=got_rank, world_size=got_world, timeout=span)
    except (RuntimeError, ValueError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ResdiagError(f"rank {rank}: could not join the other {world - 1} process(es) within "
                           f"{timeout:g} s ({first})") from None
    try:
        team = Team(store=store, rank=rank, world=world, local_world=local_world, timeout=timeout)
        try:
            yield team
        except BaseException as exc:
            with contextlib.suppress(ResdiagError):  # the first error is the one to report
                team.close(exc)
            raise
        team.close(None)
    finally:
        dist.destroy_process_group()


@dataclass(frozen=True, kw_only=True)
class Job:
    """This process's place in the job that started it (one process when not under torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    device: str = "cpu"  # where this process computes its cells: cuda:LOCAL_RANK under torchrun

    @property
    def active(self) -> bool:
        return self.world > 1


def this_job(device: str, environ=os.environ) -> Job:
    """Read torchrun's RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE (checked as ``resdiag
    train`` checks them); a CUDA ``device`` without an index becomes this rank's own GPU."""
    import torch

    from resdiag.run.distributed import device_for, from_env

    dist = from_env(environ)
    try:
        local_world = int(environ.get("LOCAL_WORLD_SIZE", dist.world if dist.launched else 1))
    except ValueError:
        raise ResdiagError("LOCAL_WORLD_SIZE must be an integer (set by torchrun)") from None
    own = str(device_for(dist, torch.device(device))) if dist.world > 1 else device
    return Job(rank=dist.rank, world=dist.world, local_rank=dist.local_rank,
               local_world=max(1, local_world), device=own)


@contextlib.contextmanager
def team(job: Job, timeout: float) -> Iterator[Solo | Team]:
    """``Solo`` for one process; for a torchrun job of several, this process joined to the others."""
    if not job.active:
        yield Solo()
        return
    if job.device.startswith("cuda"):
        import torch

        torch.cuda.set_device(job.device)  # whatever asks for "cuda" gets this rank's own GPU
    with join(world=job.world, rank=job.rank, local_world=job.local_world, timeout=timeout) as t:
        yield t
