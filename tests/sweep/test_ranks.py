"""The ranks' protocol (resdiag/sweep/ranks.py) in one process: Team objects on threads, talking
through a real TCPStore as torchrun's ranks do. Claims are exactly-once, a failure or a dead rank
ends every wait with one line, and nothing waits forever."""

import gc
import threading
import time
from datetime import timedelta

import pytest
import torch.distributed as dist

from resdiag.errors import ResdiagError
from resdiag.sweep.ranks import Team

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch without distributed")


@pytest.fixture
def teams():
    server = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False,
                           timeout=timedelta(seconds=20))
    made = []

    def make(world: int, timeout: float = 30.0) -> list[Team]:
        for r in range(world):
            made.append(Team(store=server.clone(), rank=r, world=world, local_world=world, timeout=timeout))
        return made[-world:]

    yield make
    for t in made:
        t._stop.set()
    for t in made:
        t._beat.join(timeout=10)  # no heartbeat outlives its store
    made.clear()
    gc.collect()  # the clients' connections close before the next test's store opens


def on_threads(*calls):
    """Run each call on its own thread; their results (or exceptions) in order."""
    results = [None] * len(calls)

    def run(i, call):
        try:
            results[i] = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a rank hung"
    return results


def test_every_index_is_claimed_by_exactly_one_rank(teams):
    ranks = teams(3)
    got = on_threads(*(lambda t=t: list(t.claims(500)) for t in ranks))
    flat = [i for g in got for i in g]
    assert sorted(flat) == list(range(500)) and all(got)


def test_the_shared_list_is_rank_0s(teams):
    ranks = teams(2)
    got = on_threads(lambda: ranks[0].share(lambda: ["a", "b"]), lambda: ranks[1].share(lambda: ["x"]))
    assert got == [["a", "b"], ["a", "b"]]


def test_one_ranks_bad_input_stops_every_rank(teams):
    ranks = teams(3)
    got = on_threads(lambda: ranks[0].agree(None), lambda: ranks[1].agree("--out sw is a file"),
                     lambda: ranks[2].agree(None))
    assert [str(e) for e in got] == ["rank 1: --out sw is a file", "--out sw is a file",
                                     "rank 1: --out sw is a file"]


def test_a_failed_cell_stops_the_claims_and_rank_0_reports_it(teams):
    ranks = teams(2)
    assert next(ranks[1].claims(10)) == 0
    ranks[1].failed("rank 1: cell mlp-d2: boom")
    assert list(ranks[0].claims(10)) == []  # no more cells once a rank has failed
    with pytest.raises(ResdiagError, match="^rank 1: cell mlp-d2: boom; the cells done are kept"):
        ranks[0].finished()


def test_the_first_failure_is_the_one_reported(teams):
    ranks = teams(3)
    ranks[2].failed("rank 2: first")
    ranks[1].failed("rank 1: second")
    with pytest.raises(ResdiagError, match="^rank 2: first"):
        ranks[0].finished()


def test_a_silent_rank_is_found_dead_within_the_timeout(teams):
    ranks = teams(2, timeout=0.6)
    ranks[1]._stop.set()  # its heartbeat stops, as when the process is killed
    start = time.monotonic()
    with pytest.raises(ResdiagError, match="^rank 1 stopped answering"):
        ranks[0].finished()
    assert ranks[0].dead == {1}
    ranks[0].close(ResdiagError("rank 1 stopped answering"))  # no wait for the dead rank's goodbye
    assert time.monotonic() - start < 20


def test_a_slow_rank_that_beats_is_waited_for(teams):
    ranks = teams(2, timeout=0.6)

    def slow():
        time.sleep(2.0)  # over three timeouts of computing, heart beating
        ranks[1].finished()

    got = on_threads(ranks[0].finished, slow)
    assert got == [None, None]


def test_rank_0s_outcome_reaches_the_others(teams):
    ranks = teams(2)
    got = on_threads(lambda: ranks[0].close(ResdiagError("cannot write sw/summary.json: disk full")),
                     lambda: ranks[1].close(None))
    assert got[0] is None and isinstance(got[1], ResdiagError)
    assert str(got[1]) == "rank 0: cannot write sw/summary.json: disk full"
