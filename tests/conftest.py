import signal

import pytest
import torch


@pytest.fixture(autouse=True)
def _small_threads():
    # Tiny models: thread start-up costs more than it saves on a 2-core machine.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def default_sigint():
    """Ctrl-C raises KeyboardInterrupt, whatever handler an earlier test (or library) left installed."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before if before is not None else signal.SIG_DFL)
