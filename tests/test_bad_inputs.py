"""The bad-input contract, for every command: one line on stderr naming the problem, exit 2, no
traceback, and no output file created or modified. docs/bad-inputs.md lists these cases with the
message each produces (regenerate it with `python -m tests.test_bad_inputs > docs/bad-inputs.md`).
"""

from __future__ import annotations

import os
import pickle
import sys
import warnings
from pathlib import Path

import pytest

from tests.helpers import invoke

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--arch", "resnet8", "--width", "0.25", "--input-shape", "3,8,8", "--batch-size", "4",
        "--device", "cpu"]


def files(tmp: Path) -> dict[str, object]:
    """Inputs the cases point at, written into ``tmp``."""
    (tmp / "truncated.pt").write_bytes(b"PK\x03\x04 not a whole zip")
    (tmp / "list.pt").write_bytes(pickle.dumps([1, 2, 3]))
    import torch

    from resdiag.zoo import build, resolve

    torch.save(build(resolve("mlp", 2, width=8)).state_dict(), tmp / "mlp.pt")
    from resdiag.run.checkpoint import TRAIN_SCHEMA
    from resdiag.run.common import zoo_config_dict

    plain = resolve("plain8", width=0.25, input_shape=(3, 8, 8))  # what `resdiag train` writes, in part
    torch.save({"schema": TRAIN_SCHEMA, "schema_version": 1, "model": build(plain).state_dict(),
                "identity": {"name": plain.name, "family": plain.family, "config": zoo_config_dict(plain)}},
               tmp / "plain8.pt")
    bad_cifar = tmp / "cifar" / "cifar-10-batches-py"
    bad_cifar.mkdir(parents=True)
    (bad_cifar / "data_batch_1").write_bytes(b"\x80\x02}q\x00(")  # a truncated pickle
    (tmp / "bad.toml").write_text("seed = [\n")
    (tmp / "unknown.toml").write_text('seed = 0\n[[models]]\nname = "a"\narch = "resnet8"\nfoo = 1\n')
    (tmp / "wrongtype.toml").write_text('seed = "zero"\n[[models]]\nname = "a"\narch = "resnet8"\n')
    (tmp / "nomodels.toml").write_text("seed = 0\n")
    (tmp / "a_dir.json").mkdir()
    (tmp / "mlp.json").write_bytes((tmp / "mlp.pt").read_bytes())  # a checkpoint with a .json name
    ok = 'seed = 0\n[[models]]\nname = "a"\narch = "resnet8"\nwidth = 0.25\ninput_shape = [3, 8, 8]\n'
    (tmp / "ok.toml").write_text(ok)
    (tmp / "bigseed.toml").write_text(ok.replace("seed = 0", "seed = 99999999999999999999"))
    (tmp / "bigthreads.toml").write_text(ok.replace("seed = 0", "seed = 0\nthreads = 99999999999999999999"))
    (tmp / "huge.json").write_text('{"schema": "resdiag.baseline", "schema_version": 1, "resdiag_version": '
                                   '"0", "torch_version": "0", "device": "cpu", "seed": 0, "threads": 1, '
                                   '"models": {"a": {"fingerprint": {}, "metrics": {"loss": 1'
                                   + "0" * 400 + "}}}}")
    cut = (tmp / "plain8.pt").read_bytes()
    (tmp / "cut.pt").write_bytes(cut[: len(cut) - 40])  # a checkpoint cut off while copied
    from resdiag.train.config import TrainConfig

    torch.save({"schema": TRAIN_SCHEMA, "schema_version": 1, "model": {}, "optimizer": {}, "step": 1,
                "config": TrainConfig().to_dict(), "elapsed": 0.0, "every": {},
                "identity": {"name": "os:abort", "family": "user", "config": {}, "input_shape": [8],
                             "num_classes": 5}},
               tmp / "names_code.pt")  # a data file that names code: resdiag must never call it
    os.mkfifo(tmp / "fifo.json")  # a reader-less pipe: replacing it or writing into it is wrong
    (tmp / "loop.json").symlink_to("loop.json")
    (tmp / "nowhere.json").symlink_to(tmp / "no" / "dir" / "o.json")
    (tmp / "held").mkdir()  # a finished run: its checkpoint is what --overwrite would delete
    (tmp / "held" / "checkpoint.pt").write_bytes((tmp / "plain8.pt").read_bytes())
    (tmp / "held" / "train.jsonl").write_text('{"type": "start", "step": 0}\n')
    (tmp / "held_link").symlink_to(tmp / "held")
    os.link(tmp / "held" / "checkpoint.pt", tmp / "hardlink.pt")
    (tmp / "empty.toml").write_text("")
    (tmp / "empty.json").write_text("")
    (tmp / "nan.json").write_text((tmp / "huge.json").read_text().replace("1" + "0" * 400, "NaN"))
    return {}


# (id, argv, a piece of the expected message); {tmp} is the test's folder.
CASES = [
    ("depth not 6n+2", ["grad-flow", "--depth", "57"], "try 56 or 62"),
    ("depth zero", ["grad-flow", "--depth", "0"], "not valid"),
    ("depth negative", ["rank", "--depth", "-8"], "not valid"),
    ("depth not a number", ["grad-flow", "--depth", "deep"], "--depth"),
    ("bottleneck depth", ["grad-flow", "--depth", "30", "--block", "bottleneck"], "9n+2"),
    ("unknown architecture", ["grad-flow", "--arch", "resnet_x"], "unknown architecture"),
    ("arch and depth disagree", ["rank", "--arch", "resnet110", "--depth", "56"], "conflicts"),
    ("unknown shortcut", ["grad-flow", "--shortcut", "skip"], "unknown shortcut"),
    ("malformed shortcut", ["grad-flow", "--shortcut", "scale:half"], "must be numbers"),
    ("dropout p out of range", ["grad-flow", "--shortcut", "dropout:1.5"], "[0, 1)"),
    ("plain with a shortcut", ["grad-flow", "--plain", "--shortcut", "gate"], "no shortcut"),
    ("unknown placement", ["grad-flow", "--placement", "middle"], "unknown placement"),
    ("unknown norm", ["rank", "--norm", "layer"], "unknown norm"),
    ("ResNet option on an MLP", ["grad-flow", "--arch", "mlp", "--projection", "B"], "does not apply"),
    ("MLP width not whole", ["grad-flow", "--arch", "mlp", "--width", "2.5"], "number of units"),
    ("width zero", ["grad-flow", "--width", "0"], "positive"),
    ("width too small", ["grad-flow", "--width", "0.01"], "no filters"),
    ("one class", ["grad-flow", "--num-classes", "1"], ">= 2"),
    ("bad input shape", ["grad-flow", "--input-shape", "3,0,32"], "--input-shape"),
    ("batch size zero", ["grad-flow", *TINY, "--batch-size", "0"], ">= 1"),
    ("zero batches", ["grad-flow", *TINY, "--batches", "0"], ">= 1"),
    ("BN with one sample", ["grad-flow", *TINY, "--batch-size", "1"], "batch-size >= 2"),
    ("rank batch of one", ["rank", *TINY[:6], "--batch-size", "1"], ">= 2"),
    ("absurd batch", ["grad-flow", "--arch", "resnet1202", "--batch-size", "100000", "--device", "cpu"],
     "needs about"),
    ("absurd depth", ["grad-flow", "--arch", "mlp", "--depth", "100000000"], "builds at most"),
    ("CUDA without CUDA", ["grad-flow", *TINY[:6], "--device", "cuda"], "CUDA is not available"),
    ("unknown device", ["grad-flow", "--device", "tpu"], "unknown device"),
    ("unknown mode", ["grad-flow", *TINY, "--mode", "test"], "unknown mode"),
    ("thresholds out of order", ["grad-flow", "--vanish-ratio", "10", "--explode-ratio", "1"], "thresholds"),
    ("unknown conv convention", ["rank", *TINY, "--conv", "diag"], "--conv"),
    ("negative rtol", ["rank", *TINY, "--rtol", "-1"], "--rtol"),
    ("unknown data", ["grad-flow", "--data", "imagenet"], "unknown data"),
    ("missing CIFAR folder", ["grad-flow", "--data", "cifar10:{tmp}/nowhere"], "not found"),
    ("truncated CIFAR batch", ["grad-flow", "--arch", "resnet8", "--data", "cifar10:{tmp}/cifar"],
     "not a valid batch"),
    ("missing checkpoint", ["rank", *TINY, "--checkpoint", "{tmp}/none.pt"], "checkpoint not found"),
    ("truncated checkpoint", ["rank", *TINY, "--checkpoint", "{tmp}/truncated.pt"], "cannot read checkpoint"),
    ("checkpoint not a state_dict", ["rank", *TINY, "--checkpoint", "{tmp}/list.pt"], "cannot read"),
    ("checkpoint of another model", ["grad-flow", *TINY, "--checkpoint", "{tmp}/mlp.pt"], "does not fit"),
    ("compare with a checkpoint", ["rank", "--compare", "--checkpoint", "{tmp}/mlp.pt"], "--compare"),
    ("user model not importable", ["grad-flow", "--model", "nosuch.mod:f"], "cannot import"),
    ("user model not callable", ["grad-flow", "--model", "examples.user_models:NOT_CALLABLE"],
     "not a callable"),
    ("user factory raises", ["rank", "--model", "examples.user_models:broken"], "failed"),
    ("user factory returns no module", ["grad-flow", "--model", "examples.user_models:not_a_module"],
     "not an nn.Module"),
    ("user forward fails", ["grad-flow", "--model", "examples.user_models:twice_called",
                            "--input-shape", "1,8,8"], "forward fails"),
    ("user model with zoo options", ["grad-flow", "--model", "examples.user_models:twice_called",
                                     "--depth", "20"], "only apply to the zoo"),
    ("bad blocks pattern", ["grad-flow", "--model", "examples.user_models:twice_called", "--blocks", "("],
     "regular expression"),
    ("train checkpoint of another architecture", ["grad-flow", *TINY, "--checkpoint", "{tmp}/plain8.pt"],
     "written by 'resdiag train' for plain8"),
    ("one output logit under cross-entropy", ["grad-flow", "--model", "tests.run.factories:one_logit",
                                              "--input-shape", "8"], "one logit per sample"),
    ("forward under no_grad", ["grad-flow", "--model", "tests.run.factories:no_grad", "--input-shape", "8"],
     "does not require grad"),
    ("integer logits", ["rank", "--model", "tests.run.factories:integer_logits", "--input-shape", "8"],
     "integer logits"),
    ("tokens and input shape", ["grad-flow", "--model", "tests.run.factories:tiny_lm", "--tokens", "8",
                                "--input-shape", "8"], "not both"),
    ("vocab without tokens", ["grad-flow", "--model", "tests.run.factories:tiny_lm", "--vocab", "8"],
     "--vocab applies"),
    ("tokens of length one", ["grad-flow", "--model", "tests.run.factories:tiny_lm", "--tokens", "1"],
     ">= 2"),
    ("tokens without an embedding", ["grad-flow", "--model", "tests.run.factories:linear_net",
                                     "--tokens", "8"], "give --vocab"),
    ("vocab beyond the embedding", ["grad-flow", "--model", "tests.run.factories:tiny_lm", "--tokens", "8",
                                    "--vocab", "1000"], "exceeds"),
    ("model loss without a loss", ["grad-flow", "--model", "tests.run.factories:dict_output",
                                   "--input-shape", "8", "--loss", "model"], "no 'loss' entry"),
    ("model loss, forward without labels", ["grad-flow", "--model", "tests.run.factories:tiny_lm",
                                            "--tokens", "8", "--loss", "model"], "'labels'"),
    ("unknown loss", ["grad-flow", *TINY, "--loss", "hinge"], "unknown loss"),
    ("json path in a missing folder", ["grad-flow", "--json", "{tmp}/no/dir/o.json"], "does not exist"),
    ("json path is a folder", ["grad-flow", "--json", "{tmp}/a_dir.json"], "is a folder"),
    ("plot format unknown", ["grad-flow", "--plot", "{tmp}/o.gif"], ".png"),
    ("unknown option", ["rank", "--bogus"], "No such option"),
    ("unknown command", ["diagnose"], "No such command"),
    ("config file missing", ["check", "--config", "{tmp}/none.toml"], "none.toml"),
    ("config syntax error", ["check", "--config", "{tmp}/bad.toml"], "bad.toml"),
    ("config unknown key", ["check", "--config", "{tmp}/unknown.toml"], "foo"),
    ("config wrong type", ["check", "--config", "{tmp}/wrongtype.toml"], "seed"),
    ("config without models", ["check", "--config", "{tmp}/nomodels.toml"], "models"),
    ("sweep depth invalid", ["sweep", "--out", "{tmp}/sw", "--families", "resnet", "--depths", "57"],
     "no valid cell"),
    ("sweep jobs zero", ["sweep", "--out", "{tmp}/sw", "--families", "mlp", "--depths", "2", "--jobs", "0"],
     "--jobs"),
    ("sweep unknown probe", ["sweep", "--out", "{tmp}/sw", "--probes", "hessian"], "unknown probe"),
    ("sweep cell too large", ["sweep", "--out", "{tmp}/sw", "--families", "resnet", "--depths", "1202",
                              "--probes", "rank", "--rank-batch-size", "100000"], "needs about"),
    ("sweep out is a file", ["sweep", "--out", "{tmp}/list.pt", "--families", "mlp", "--depths", "2"],
     "is a file"),
    ("train without --out", ["train", "--arch", "resnet8"], "--out"),
    ("train zero steps", ["train", *TINY, "--steps", "0", "--out", "{tmp}/run"], "--steps"),
    ("train negative lr", ["train", *TINY, "--lr", "-0.1", "--out", "{tmp}/run"], "--lr"),
    ("train warm-up past the budget", ["train", *TINY, "--steps", "5", "--warmup-steps", "9",
                                       "--out", "{tmp}/run"], "--warmup-steps"),
    ("train resume missing", ["train", "--resume", "{tmp}/none.pt", "--out", "{tmp}/run"], "none.pt"),
    ("train resume not a run", ["train", "--resume", "{tmp}/list.pt", "--out", "{tmp}/run"], "list.pt"),
    ("train out is a file", ["train", *TINY, "--out", "{tmp}/list.pt"], "list.pt"),
    # issue 13: numbers beyond what the machine holds
    ("gate bias beyond float32", ["grad-flow", *TINY, "--shortcut", "gate:-1e308"], "float32"),
    ("gate bias just beyond float32", ["grad-flow", *TINY, "--shortcut", "gate:1e39"], "float32"),
    ("width beyond any device", ["grad-flow", *TINY, "--width", "1e308"], "at most"),
    ("init gain beyond float32", ["grad-flow", *TINY, "--init-gain", "1e39"], "init gain"),
    ("seed beyond 64 bits", ["grad-flow", *TINY, "--seed", "99999999999999999999"], "64-bit"),
    ("config seed beyond 64 bits", ["check", "--config", "{tmp}/bigseed.toml"], "64-bit"),
    ("sweep seed beyond 64 bits", ["sweep", "--out", "{tmp}/sw", "--families", "mlp", "--depths", "2",
                                   "--seeds", "0,99999999999999999999"], "64-bit"),
    ("train seed beyond 64 bits", ["train", *TINY, "--seed", "99999999999999999999", "--out", "{tmp}/run"],
     "64-bit"),
    ("train lr beyond float32", ["train", *TINY, "--lr", "1e308", "--out", "{tmp}/run"], "--lr"),
    ("train momentum of 1 or more", ["train", *TINY, "--momentum", "5", "--out", "{tmp}/run"], "[0, 1)"),
    ("baseline metric beyond float64", ["check", "--config", "{tmp}/ok.toml", "--baseline",
                                        "{tmp}/huge.json"], "beyond float64"),
    ("weights too large for memory", ["grad-flow", "--arch", "resnet8", "--width", "64", "--num-classes",
                                      "100000000", "--device", "cpu"], "--num-classes"),
    # issue 13: repeated cells
    ("sweep repeated depth", ["sweep", "--out", "{tmp}/sw", "--families", "mlp", "--depths", "2,2"],
     "more than once"),
    ("sweep repeated seed", ["sweep", "--out", "{tmp}/sw", "--families", "mlp", "--depths", "2",
                             "--seeds", "0,0"], "more than once"),
    # issue 13: outputs on inputs, two outputs on one file, names
    ("json output on the checkpoint read", ["grad-flow", *TINY, "--checkpoint", "{tmp}/mlp.json", "--json",
                                            "{tmp}/mlp.json"], "reads"),
    ("json name without a stem", ["grad-flow", "--json", "{tmp}/.json"], "give a file name before"),
    ("baseline without .json", ["check", "--config", "{tmp}/ok.toml", "--baseline", "{tmp}/ok.toml",
                                "--update-baseline"], ".json"),
    ("baseline and junit on one file", ["check", "--config", "{tmp}/ok.toml", "--baseline", "{tmp}/b.json",
                                        "--junitxml", "{tmp}/b.json", "--update-baseline"], ".xml"),
    ("train checkpoint is a folder", ["train", *TINY, "--checkpoint", "{tmp}/cifar",
                                              "--out", "{tmp}/run"], "is a folder"),
    # issue 13: misleading messages
    ("checkpoint is a folder", ["rank", *TINY, "--checkpoint", "{tmp}/cifar"], "is a folder"),
    ("resume is a folder", ["train", "--resume", "{tmp}/cifar", "--out", "{tmp}/run"], "is a folder"),
    ("truncated resume", ["train", "--resume", "{tmp}/cut.pt", "--out", "{tmp}/run"], "truncated"),
    ("resume names code", ["train", "--resume", "{tmp}/names_code.pt", "--out", "{tmp}/run"],
     "does not import code"),
    ("resume with another model", ["train", "--model", "tests.run.factories:linear_net", "--input-shape", "8",
                                   "--resume", "{tmp}/names_code.pt", "--out", "{tmp}/run"],
     "was written for"),
    ("claims quick with another budget", ["claims", "--out", "{tmp}/c", "--quick", "--budget", "full"],
     "--quick"),
    ("claims unknown budget", ["claims", "--out", "{tmp}/c", "--budget", "huge"], "unknown --budget"),
    ("claims unknown data", ["claims", "--out", "{tmp}/c", "--data", "mnist"], "unknown data"),
    # issue 13, round three: outputs that are not plain files, links, names, inputs inside --out
    ("json output is a pipe", ["grad-flow", *TINY, "--json", "{tmp}/fifo.json"], "not a regular file"),
    ("junit output is a pipe", ["check", "--config", "{tmp}/ok.toml", "--junitxml", "{tmp}/fifo.json"], ".xml"),
    ("json output is a symlink loop", ["rank", *TINY, "--json", "{tmp}/loop.json"], "cannot be followed"),
    ("json symlink into a missing folder", ["grad-flow", *TINY, "--json", "{tmp}/nowhere.json"],
     "does not exist"),
    ("json name too long", ["grad-flow", *TINY, "--json", "{tmp}/" + "n" * 240 + ".json"], "too long"),
    ("newline in an output path", ["grad-flow", *TINY, "--json", "{tmp}/no\ndir/o.json"], "no\\ndir"),
    ("plot without a name", ["rank", *TINY, "--plot", "{tmp}/.png"], "give a file name before"),
    ("train overwrite deletes its --checkpoint", ["train", *TINY, "--checkpoint", "{tmp}/held/checkpoint.pt",
                                                  "--out", "{tmp}/held", "--overwrite"], "replaces or deletes"),
    ("train overwrite deletes a hard link's file", ["train", *TINY, "--checkpoint", "{tmp}/hardlink.pt",
                                                    "--out", "{tmp}/held", "--overwrite"], "replaces or deletes"),
    ("train out through a symlink holds the input", ["train", *TINY, "--checkpoint",
                                                     "{tmp}/held/checkpoint.pt", "--out", "{tmp}/held_link",
                                                     "--overwrite"], "replaces or deletes"),
    ("train resume from the log it replaces", ["train", "--resume", "{tmp}/held/train.jsonl",
                                               "--out", "{tmp}/held", "--overwrite"], "replaces or deletes"),
    ("train out already holds a run", ["train", *TINY, "--out", "{tmp}/held"], "already holds a run"),
    ("train out is a symlink loop", ["train", *TINY, "--out", "{tmp}/loop.json"], "cannot be followed"),
    ("train out is a link to a missing folder", ["train", *TINY, "--out", "{tmp}/nowhere.json"],
     "which does not exist"),
    ("empty config", ["check", "--config", "{tmp}/empty.toml"], "no models"),
    ("config threads beyond a C int", ["check", "--config", "{tmp}/bigthreads.toml"], "threads"),
    ("empty baseline", ["check", "--config", "{tmp}/ok.toml", "--baseline", "{tmp}/empty.json"],
     "cannot read baseline"),
    ("baseline is a pipe", ["check", "--config", "{tmp}/ok.toml", "--baseline", "{tmp}/fifo.json",
                            "--update-baseline"], "not a regular file"),
    ("config is a folder", ["check", "--config", "{tmp}/held"], "is a folder"),
    ("train nan learning rate", ["train", *TINY, "--lr", "nan", "--out", "{tmp}/run"], "--lr"),
    ("train infinite weight decay", ["train", *TINY, "--weight-decay", "inf", "--out", "{tmp}/run"],
     "--weight-decay"),
    ("nan shortcut scale", ["grad-flow", *TINY, "--shortcut", "scale:nan"], "finite"),
    ("nan rank tolerance", ["rank", *TINY, "--rtol", "nan"], "--rtol"),
    ("models with an argument", ["models", "resnet"], "unexpected extra argument"),
    ("claims out is a symlink loop", ["claims", "--quick", "--out", "{tmp}/loop.json"], "cannot be followed"),
    ("sweep out is a symlink loop", ["sweep", "--out", "{tmp}/loop.json", "--families", "mlp", "--depths", "2"],
     "cannot be followed"),
]

SENTINEL = "previous contents\n"



def run_case(argv: list[str], tmp: Path) -> tuple[int, str, bool]:
    """Run one case with --json/--plot pointed at files that already exist; report whether any file
    in ``tmp`` was created, removed or changed."""
    files(tmp)
    argv = [a.replace("{tmp}", str(tmp)) for a in argv]
    if argv[0] in ("grad-flow", "rank") and "--json" not in argv:
        (tmp / "out.json").write_text(SENTINEL)
        argv += ["--json", str(tmp / "out.json")]
    before = snapshot(tmp)
    with warnings.catch_warnings(record=True) as caught:  # a warning would be a second stderr line
        warnings.simplefilter("always")
        code, err = invoke(argv)
    err += "".join(f"{w.category.__name__}: {w.message}\n" for w in caught)
    return code, err, before == snapshot(tmp)


def snapshot(tmp: Path) -> dict[Path, object]:
    """Every file's bytes and every folder, link and pipe under ``tmp`` (a folder left behind counts)."""
    out: dict[Path, object] = {}
    for p in tmp.rglob("*"):
        if p.is_symlink():
            out[p] = ("link", os.readlink(p))
        elif p.is_file():
            out[p] = p.read_bytes()
        else:
            out[p] = "folder" if p.is_dir() else "other"
    return out


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("case, argv, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, argv, message, tmp_path):
    code, err, untouched = run_case(argv, tmp_path)
    assert code == 2, (case, code, err)
    assert err.startswith("resdiag: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert message in err, err
    assert untouched, "an output file was created or modified"


def test_docs_list_every_case():
    doc = (ROOT / "docs" / "bad-inputs.md").read_text()
    missing = [case for case, _, _ in CASES if f"| {case} |" not in doc]
    assert not missing, f"docs/bad-inputs.md lacks {missing}: regenerate it"


def markdown() -> str:
    import tempfile

    lines = ["# Bad input: what each mistake produces", "",
             "Every case exits with code 2, prints one line on stderr, no traceback, and creates or",
             "changes no file. Generated by `python -m tests.test_bad_inputs > docs/bad-inputs.md` and",
             "checked by `tests/test_bad_inputs.py`; paths are shortened to `TMP/`.", "",
             "Outputs are checked before any work: a name with the right suffix and short enough for its",
             "temporary file, a plain file or none (not a pipe or a device), a symbolic link that can be",
             "followed, a folder that exists and takes a new file, no two outputs on one file, no output on",
             "a file the command reads, and no input inside a `train --out` folder where the run writes.",
             "Beyond this table, `tests/test_output_group.py`, `tests/test_output_faults.py`,",
             "`tests/test_process_faults.py` and `tests/train/test_folder.py` hold the faults around a run:",
             "the outputs of `grad-flow`, `rank` and `check` are written as a group, all or nothing (a",
             "failure on any one of them, simulated, leaves every file as it was: the baseline, the JUnit",
             "file, the step summary); a stdout closed by its reader (`| head`) or at the start (`>&-`)",
             "loses no file and keeps the exit code; SIGTERM exits 143 like Ctrl-C (130), one line, no",
             "temporary file, no worker of `sweep --jobs` left running; Ctrl-C during the imports is one",
             "line too; `train` locks its folder, keeps nothing of a run stopped before its first",
             "checkpoint, never tears a line of `train.jsonl`, and `--overwrite` replaces a run only once",
             "the new one has a checkpoint; `sweep` reuses a cell only if computed with the same settings",
             "(probes, batches, batch sizes, device, tokens, data) and refuses a repeated depth or seed;",
             "what a user's model prints goes to stderr (`train` too); its leftover threads do not keep",
             "resdiag running. docs/security.md states what each command writes and when.", "",
             "| case | command | message |", "|---|---|---|"]
    os.chdir(ROOT)
    for case, argv, _ in CASES:
        with tempfile.TemporaryDirectory() as d:
            code, err, _ = run_case(list(argv), Path(d))
            shown = " ".join(argv).replace("{tmp}", "TMP").replace("|", "\\|").replace("\n", "\\n")
            msg = err.strip().replace(d, "TMP").replace("|", "\\|")
            lines.append(f"| {case} | `resdiag {shown}` | `{msg}` |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
