"""Hypothesis over the CLI's arguments: never a traceback, always exit 0, 1 or 2 (143 under SIGTERM);
an error exit leaves an existing output untouched; with a closed stdout or SIGTERM too (issue 13);
outputs that are pipes, symbolic-link loops, names too long or holding a newline are refused.

The default suite runs a small sample; `pytest -m fuzz tests/cli/test_fuzz.py` runs 500 invocations
(add `-s` to see the exit-code counts; each run must reach both exit 0 and exit 2).
"""

import io
import os
import signal
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resdiag.cli.app import main
from tests.helpers import invoke

VALUES = {
    "--arch": ["resnet8", "plain8", "preact_resnet14", "mlp", "plain_mlp", "resnet57", "nope", "", "mlp3"],
    "--depth": ["-1", "0", "2", "8", "11", "57", "1000000000000", "x", "3.5"],
    "--width": ["0.25", "0", "-1", "8", "1e9", "nan", "inf", "abc"],
    "--shortcut": ["identity", "scale:0.5", "scale:", "scale:1,2,3", "gate:-6", "shortcut_gate", "conv",
                   "dropout:2", "dropout:0.5", "??", "scale:inf"],
    "--placement": ["post", "preact", "relu_before_add", "sideways"],
    "--norm": ["batch", "none", "layer"],
    "--block": ["basic", "bottleneck", "tri"],
    "--projection": ["A", "B", "C"],
    "--num-classes": ["2", "10", "1", "0", "-5", "ten"],
    "--input-shape": ["3,8,8", "3,4,4", "0,1,1", "a", "3,8", "16", ""],
    "--init-gain": ["1", "0", "-1", "1e40", "nan"],
    "--batches": ["0", "1", "2", "-1", "x"],
    "--batch-size": ["0", "1", "2", "4", "1000000000", "-2"],
    "--seed": ["0", "7", "-1", "x"],
    "--device": ["cpu", "cuda", "cuda:7", "tpu", "auto"],
    "--data": ["synthetic", "cifar10:/nonexistent", "cifar10:", "mnist", "synthetic:x"],
    "--mode": ["train", "eval", "test"],
    "--rows": ["0", "1", "3", "-1"],
    "--vanish-ratio": ["1e-4", "0", "-1", "10"],
    "--conv": ["flat", "slices", "diag"],
    "--checkpoint": ["/nonexistent.pt", "{tmp}/same.json", "{tmp}"],
    "--model": ["examples.user_models:twice_called", "nope:x", "examples.user_models:broken", "x"],
    "--blocks": ["block", "(", "layer1\\.\\d"],
    "--json": ["{tmp}/o.json", "{tmp}/o.txt", "/nonexistent/o.json", "{tmp}/same.json", "{tmp}/.json",
               "{tmp}/link.json", "{tmp}/fifo.json", "{tmp}/loop.json", "{tmp}/" + "n" * 240 + ".json",
               "{tmp}/no\ndir/o.json", "{tmp}/ø résumé.json"],
    "--plot": ["{tmp}/o.png", "{tmp}/o.gif", "{tmp}", "{tmp}/same.json", "{tmp}/link.json", "{tmp}/loop.png",
               "{tmp}/fifo.json"],
}
FLAGS = ["--plain", "--compare", "--strict", "--bogus"]
COMMANDS = {
    "grad-flow": [k for k in VALUES if k != "--conv"],
    "rank": [k for k in VALUES if k not in ("--batches", "--vanish-ratio")],
    "models": [],
}


@st.composite
def argv(draw):
    cmd = draw(st.sampled_from([*COMMANDS, "nope"]))
    args = [cmd]
    for opt in draw(st.lists(st.sampled_from(COMMANDS.get(cmd, []) + FLAGS), max_size=6, unique=True)):
        args += [opt] if opt in FLAGS else [opt, draw(st.sampled_from(VALUES[opt]))]
    # Keep the runs that succeed small: tiny defaults go first, fuzzed values override them.
    if cmd in ("grad-flow", "rank"):
        args[1:1] = ["--width", "0.25", "--input-shape", "3,8,8", "--batch-size", "4", "--device", "cpu"]
        if cmd == "grad-flow":
            args[1:1] = ["--batches", "1"]
        if "--arch" not in args and "--model" not in args:
            args[1:1] = ["--arch", "resnet8"]
    return args


# How the process around the command behaves (issue 13): a reader that has closed stdout (`| head`),
# and SIGTERM arriving once the target is described (what a scheduler sends).
FATES = st.sampled_from(["normal", "normal", "closed-stdout", "sigterm"])


class _ClosedPipe(io.StringIO):
    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def _terminating(real):
    def check_seed(*a, **k):
        signal.raise_signal(signal.SIGTERM)  # handled by the command: Terminated, exit 143
        return real(*a, **k)

    return check_seed


def _check(args, tmp_path_factory, fate="normal"):
    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "same.json").write_text("previous\n")
    (tmp / "link.json").symlink_to(tmp / "same.json")
    (tmp / "loop.png").symlink_to("loop.png")
    os.mkfifo(tmp / "fifo.json")  # an output that is a pipe: refused, never replaced or blocked on
    argv = [a.replace("{tmp}", str(tmp)) for a in args]
    if fate == "closed-stdout":
        err = io.StringIO()
        code = 0
        with redirect_stdout(_ClosedPipe()), redirect_stderr(err):
            try:
                main(argv)
            except SystemExit as exc:
                code = exc.code
        err = err.getvalue()
    elif fate == "sigterm":
        import resdiag.run.target as target_mod

        with mock.patch.object(target_mod, "check_seed", _terminating(target_mod.check_seed)):
            code, err = invoke(argv)
    else:
        code, err = invoke(argv)
    assert code in (0, 1, 2, 143), (args, code, err)
    assert "Traceback" not in err, (args, err)
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("resdiag: error:"), (args, err)
        assert (tmp / "same.json").read_text() == "previous\n", args  # an error exit writes nothing
    if code == 143:
        assert err == "resdiag: terminated\n" and (tmp / "same.json").read_text() == "previous\n", (args, err)
        assert not list(tmp.rglob("*.tmp")), args
    assert (tmp / "fifo.json").is_fifo() and (tmp / "loop.png").is_symlink(), args
    if fate == "normal" and "same.json" in " ".join(argv) and code in (0, 1):
        outs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--json", "--plot")]
        ins = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--checkpoint"]
        assert not set(map(os.path.realpath, outs)) & set(map(os.path.realpath, ins)), args
    return code


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


COMMON = dict(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def _fuzz(n: int, tmp_path_factory) -> Counter:
    """Run n drawn command lines through _check, each with a drawn fate; the exit-code counts (and
    the fates, under "fate:NAME")."""
    codes: Counter = Counter()

    @settings(max_examples=n, **COMMON)
    @given(args=argv(), fate=FATES)
    def one(args, fate):
        codes[_check(args, tmp_path_factory, fate)] += 1
        codes[f"fate:{fate}"] += 1

    one()
    return codes


def _reaches_both_paths(codes: Counter) -> None:
    # A fuzz run in which every command is refused (or none is) tests one path only: the tiny
    # defaults in argv() must keep some runs successful, and the fuzzed values must break others.
    exits = {k: v for k, v in sorted((k, v) for k, v in codes.items() if isinstance(k, int))}
    fates = {k: v for k, v in sorted((k, v) for k, v in codes.items() if isinstance(k, str))}
    print(f"\nfuzz exit codes: {exits}, cases {sum(exits.values())}, {fates}")
    assert codes[0] > 0 and codes[2] > 0, dict(codes)


def test_cli_fuzz_sample(tmp_path_factory):
    _reaches_both_paths(_fuzz(25, tmp_path_factory))


@pytest.mark.fuzz
def test_cli_fuzz_500(tmp_path_factory):
    _reaches_both_paths(_fuzz(500, tmp_path_factory))
