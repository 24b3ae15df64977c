from pathlib import Path

import pytest

from resdiag.train import RunOptions
from resdiag.zoo import resolve

TINY_ARGS = ["--arch", "resnet8", "--width", "0.25", "--input-shape", "3,8,8", "-b", "8", "--device", "cpu"]


@pytest.fixture
def tiny():
    return resolve("resnet8", width=0.25, input_shape=(3, 8, 8))


def options(out: Path, **kw) -> RunOptions:
    """No figures and no feature ranks unless asked: the loop is what these tests are about."""
    kw = {"features": False, "plots": False, "device": "cpu", **kw}
    return RunOptions(out, **kw)
