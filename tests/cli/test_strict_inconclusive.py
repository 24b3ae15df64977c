"""--strict fails on an inconclusive verdict (a rule that could not be applied), like any verdict
that is not healthy; without --strict the run itself succeeds."""

import json
from pathlib import Path

import pytest

from tests.helpers import invoke_out

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("command", ["grad-flow", "rank"])
def test_strict_treats_inconclusive_as_failing(tmp_path, command):
    args = [command, "--model", "tests.run.factories:linear_net", "--input-shape", "8", "-b", "4",
            "--device", "cpu", "--json", str(tmp_path / "r.json")]  # a Sequential: no block to find
    code, _, err = invoke_out(args)
    assert code == 0, err
    assert json.loads((tmp_path / "r.json").read_text())["verdict"]["status"] == "inconclusive"
    code, _, err = invoke_out([*args, "--strict"])
    assert code == 1, err
