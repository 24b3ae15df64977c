"""On the CPU, the same command with the same seed writes byte-identical JSON, for every command
that writes JSON. Wall-clock fields (train.jsonl's "time", claims.json's "seconds") are the only
exceptions, documented in docs/ci.md and removed before comparing."""

import json
from pathlib import Path

import pytest

from tests.helpers import invoke, invoke_out

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--arch", "resnet8", "--width", "0.25", "--input-shape", "3,8,8", "--device", "cpu", "--seed", "3"]


def twice(tmp_path, make_args, read):
    outs = []
    for run in ("a", "b"):
        folder = tmp_path / run
        folder.mkdir()
        code, err = invoke(make_args(folder))
        assert code in (0, 1), err
        outs.append(read(folder))
    return outs


def whole(name):
    return lambda folder: (folder / name).read_bytes()


@pytest.mark.parametrize("args, name", [
    (["grad-flow", *TINY, "-k", "2", "-b", "4", "--shortcut", "dropout:0.5"], "o.json"),
    (["grad-flow", *TINY, "-k", "1", "-b", "4", "--compare"], "o.json"),
    (["rank", *TINY, "-b", "8"], "o.json"),
    (["rank", *TINY, "-b", "8", "--conv", "slices", "--compare"], "o.json"),
])
def test_grad_flow_and_rank(tmp_path, args, name):
    a, b = twice(tmp_path, lambda f: [*args, "--json", str(f / name)], whole(name))
    assert a == b


def test_check_json(monkeypatch):
    monkeypatch.chdir(ROOT)
    args = ["check", "--config", str(ROOT / ".ci" / "resdiag.toml"), "--format", "json"]
    code_a, a, err = invoke_out(args)
    code_b, b, _ = invoke_out(args)
    assert code_a == code_b == 0, err
    assert a == b and json.loads(a)


def test_sweep_cells_and_summary(tmp_path):
    def args(folder):
        return ["sweep", "--out", str(folder), "--families", "mlp,plain_mlp", "--depths", "2",
                "--seeds", "0,1", "--batches", "1", "--batch-size", "4", "--rank-batch-size", "8"]

    def read(folder):
        return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*.json"))}

    a, b = twice(tmp_path, args, read)
    assert a == b and len(a) == 5


def test_train_jsonl_without_wall_clock(tmp_path):
    def args(folder):
        return ["train", *TINY, "--steps", "4", "--batch-size", "8", "--record-every", "2",
                "--out", str(folder / "run")]

    def read(folder):
        lines = [json.loads(x) for x in (folder / "run" / "train.jsonl").read_text().splitlines()]
        for line in lines:
            line.pop("time", None)
            if line["type"] == "end":
                line.pop("seconds", None)
        return lines

    a, b = twice(tmp_path, args, read)
    assert a == b
