"""Config parsing: every key typed and checked, every error naming the file and the key."""

import dataclasses
import json
import re
import types
import typing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resdiag.check.config import RunSettings, load_config
from resdiag.check.schema import ArchModel, Baseline, ConfigFile, UserModel
from resdiag.check.metrics import LIMITS, METRICS
from resdiag.diagnosis.thresholds import GradThresholds, RankThresholds
from resdiag.errors import ResdiagError
from resdiag.run.spec_fields import LOSSES, ZOO_NAMES
from resdiag.thresholds_schema import METRIC_RANGES
from resdiag.zoo import resolve

MODEL = '[[models]]\nname = "m"\narch = "resnet8"\n'
_MIN, _MAX = LIMITS["min_boundary_ratio"].default, LIMITS["max_boundary_ratio"].default  # the defaults
USER = "[[models]]\nname = 'm'\nmodel = 'pkg.mod:f'\ninput_shape = [3]\n"


def load(tmp_path, text, name="resdiag.toml"):
    path = tmp_path / name
    path.write_text(text)
    return load_config(path)


def error(tmp_path, text, name="resdiag.toml"):
    with pytest.raises(ResdiagError) as exc:
        load(tmp_path, text, name)
    message = str(exc.value)
    assert message.startswith(f"{tmp_path / name}: ") and "\n" not in message
    return message


def test_defaults(tmp_path):
    cfg = load(tmp_path, MODEL)
    assert (cfg.seed, cfg.device, cfg.baseline_file) == (0, "cpu", None)
    (m,) = cfg.models
    assert m.arch == resolve("resnet8") and m.settings == RunSettings()
    g, r = GradThresholds(), RankThresholds()
    assert dict(m.gates.limits) == {
        "max_boundary_ratio": g.explode_ratio, "min_boundary_ratio": g.vanish_ratio,
        "min_feature_retention": r.feature_retention, "min_rank1_distance": r.rank1_distance,
        "min_weight_erank_ratio": r.weight_erank_ratio}
    assert m.gates.require_healthy
    assert set(cfg.tolerances) == set(METRICS)


def test_every_key(tmp_path):
    cfg = load(tmp_path, """
seed = 3
device = "auto"
probes = ["rank"]
batches = 1
batch_size = 4
rank_batch_size = 8
mode = "eval"
data = "synthetic"
[gates]
min_feature_retention = 0.4
min_rank1_distance = false
require_healthy = false
[baseline]
file = "base/line.json"
tolerance = { feature_erank_retention = "abs:0.1", boundary_ratio = "rel:10%" }
[[models]]
name = "a-1"
arch = "resnet"
depth = 14
plain = true
block = "basic"
projection = "b"
placement = "preact"
norm = "none"
width = 0.5
init = "fan_in"
init_gain = 2
num_classes = 3
input_shape = [1, 8, 8]
probes = ["grad-flow", "rank"]
batches = 2
gates = { max_log_growth_per_block = 0.5, min_boundary_ratio = 1e-2 }
[[models]]
name = "b"
arch = "mlp"
depth = 4
width = 8
branch_gain = 0.5
shortcut = "scale:0.9"
[[models]]
name = "u"
model = "pkg.mod:make"
input_shape = [3, 4, 4]
num_classes = 7
loss = "cross_entropy"
""")
    assert (cfg.seed, cfg.device) == (3, "auto")
    assert cfg.baseline_file == tmp_path / "base/line.json"
    assert cfg.tolerances["boundary_ratio"].value == pytest.approx(0.1)
    a, b, u = cfg.models
    assert a.arch == resolve("resnet14", plain=True, projection="B", placement="preact", norm="none",
                             width=0.5, init="fan_in", init_gain=2.0, num_classes=3, input_shape=(1, 8, 8))
    assert a.settings == RunSettings(("grad-flow", "rank"), 2, 4, 8, "eval", "synthetic")
    assert a.gates.limits == (
        ("max_boundary_ratio", GradThresholds().explode_ratio), ("min_boundary_ratio", 1e-2),
        ("max_log_growth_per_block", 0.5), ("min_feature_retention", 0.4),
        ("min_weight_erank_ratio", RankThresholds().weight_erank_ratio))
    assert not a.gates.require_healthy
    assert [k for k, _ in b.gates.limits] == ["min_feature_retention", "min_weight_erank_ratio"]
    assert b.arch.shortcut.lam == 0.9 and b.arch.branch_gain == 0.5
    assert (u.factory, u.input_shape, u.num_classes, u.arch) == ("pkg.mod:make", (3, 4, 4), 7, None)


def test_model_gates_override_the_global_ones(tmp_path):
    cfg = load(tmp_path, "[gates]\nmax_boundary_ratio = 50\nmin_boundary_ratio = 0.5\n" + MODEL
               + "gates = { min_boundary_ratio = false }\n")
    limits = dict(cfg.models[0].gates.limits)
    assert limits["max_boundary_ratio"] == 50 and "min_boundary_ratio" not in limits


def test_pyproject_reads_tool_resdiag_only(tmp_path):
    text = "[project]\nname = 'x'\n[tool.ruff]\nline-length = 1\n[tool.resdiag]\nseed = 5\n" \
           + MODEL.replace("[[models]]", "[[tool.resdiag.models]]")
    assert load(tmp_path, text, "pyproject.toml").seed == 5
    message = error(tmp_path, text.replace("seed = 5", "sede = 5"), "pyproject.toml")
    assert message.endswith(": tool.resdiag.sede: unknown key (did you mean 'seed'?)")
    assert "no [tool.resdiag]" in error(tmp_path, "[project]\nname = 'x'\n", "pyproject.toml")


BAD = [
    (MODEL + "foo = 1\n", "models.m.foo: unknown key"),
    ("bogus = 1\n" + MODEL, "bogus: unknown key"),
    ("depth = 8\n" + MODEL, "depth: unknown key at the top level: it belongs in a [[models]] table"),
    ("bath_size = 1\n" + MODEL, "bath_size: unknown key (did you mean 'batch_size'?)"),
    ("[gates]\nmax_ratio = 1\n" + MODEL, "gates.max_ratio: unknown key (did you mean 'max_boundary_ratio'?)"),
    ("[baseline]\ntolerance = { nope = 'rel:5%' }\n" + MODEL, "baseline.tolerance.nope: unknown key"),
    (MODEL + "gates = { min_feature = 1 }\n",
     "models.m.gates.min_feature: unknown key (did you mean 'min_feature_retention'?)"),
    (MODEL + "dpeth = 8\n", "models.m.dpeth: unknown key (did you mean 'depth'?)"),
    ("[tool.resdiag]\nseed = 1\n", "tool: unknown key: a resdiag.toml holds resdiag's keys at its top level"),
    ("seed = 1.5\n" + MODEL, "seed: must be an integer, got number 1.5"),
    ("seed = true\n" + MODEL, "seed: must be an integer, got boolean True"),
    ("seed = -1\n" + MODEL, "seed: must be ≥ 0, got -1"),
    ("threads = 0\n" + MODEL, "threads: must be ≥ 1, got 0"),
    ("deterministic = 1\n" + MODEL, "deterministic: must be a boolean, got integer 1"),
    ("batches = 0\n" + MODEL, "batches: must be ≥ 1, got 0"),
    ("batch_size = 0\n" + MODEL, "batch_size: must be ≥ 1, got 0"),
    ("rank_batch_size = 1\n" + MODEL, "rank_batch_size: must be ≥ 2, got 1"),
    ("probes = ['grad_flow']\n" + MODEL, "probes[0]: must be 'grad-flow' or 'rank', got string 'grad_flow'"),
    ("probes = ['rank', 'rank']\n" + MODEL, "probes: must list each probe once"),
    ("probes = []\n" + MODEL, "probes: must not be empty"),
    ("probes = 'rank'\n" + MODEL, "probes: must be an array, got string 'rank'"),
    ("mode = 'test'\n" + MODEL, "mode: must be 'train' or 'eval', got string 'test'"),
    ("device = 'gpu'\n" + MODEL, "device: must be auto, cpu, cuda or cuda:N, got string 'gpu'"),
    ("data = 'cifar10:/no/such/dir'\n" + MODEL, "data: is not usable: CIFAR-10 directory not found"),
    ("[gates]\nmax_boundary_ratio = 'big'\n" + MODEL,
     "gates.max_boundary_ratio: must be a number, or false to turn the gate off; got string 'big'"),
    ("[gates]\nmax_boundary_ratio = true\n" + MODEL, "gates.max_boundary_ratio: must be a number, or false to turn the gate off; got boolean True"),
    ("[gates]\nmax_boundary_ratio = nan\n" + MODEL, "gates.max_boundary_ratio: must be a finite number > 0"),
    ("[gates]\nrequire_healthy = 1\n" + MODEL, "gates.require_healthy: must be a boolean, got integer 1"),
    ("gates = 3\n" + MODEL, "gates: must be a table, got integer 3"),
    (f"[gates]\nmin_boundary_ratio = {2 * _MAX:g}\n" + MODEL,
     f"gates.min_boundary_ratio: min_boundary_ratio = {2 * _MAX:g} is above max_boundary_ratio = {_MAX:g}"),
    (MODEL + f"gates = {{ max_boundary_ratio = {_MIN / 2:g} }}\n",
     f"models.m.gates.max_boundary_ratio: min_boundary_ratio = {_MIN:g} is above max_boundary_ratio = "
     f"{_MIN / 2:g}"),
    ("[baseline]\ntolerance = { boundary_ratio = '5%' }\n" + MODEL,
     "baseline.tolerance.boundary_ratio: is not a tolerance: malformed tolerance '5%'"),
    ("[baseline]\nfile = 3\n" + MODEL, "baseline.file: must be a string, got integer 3"),
    ("seed = 1\n", "no models to check: add a [[models]] table"),
    ("models = [1]\n", "models[0]: must be a table, got integer 1"),
    ('[models]\nname = "m"\narch = "resnet8"\n', "models: must be an array of tables (write [[...]] in TOML"),
    ('[[models]]\narch = "resnet8"\n', "models[0].name: missing required key"),
    ('[[models]]\nname = "a b"\narch = "resnet8"\n',
     "models[0].name: must be letters, digits, '_' and '-', got string 'a b'"),
    (MODEL + MODEL, "models[1].name: repeats the name 'm' of models[0]"),
    ('[[models]]\nname = "m"\n', "models.m: needs exactly one of 'arch' (a built-in model) or 'model'"),
    (MODEL + 'model = "a:b"\n', "models.m: needs exactly one of 'arch'"),
    (MODEL + "depth = 57\n", "models.m: --arch resnet8 has depth 8"),
    ('[[models]]\nname = "m"\narch = "resnet"\ndepth = 57\n', "models.m: depth 57 is not valid"),
    (MODEL + "depth = 0\n", "models.m.depth: must be ≥ 1, got 0"),
    (MODEL + "width = '1'\n", "models.m.width: must be a number, got string '1'"),
    (MODEL + "width = 0\n", "models.m.width: must be > 0, got 0"),
    (MODEL + "width = inf\n", "models.m.width: must be a finite number, got inf"),
    (MODEL + "init_gain = -1\n", "models.m.init_gain: must be ≥ 0, got -1"),
    (MODEL + "input_shape = [3, 'a']\n", "models.m.input_shape[1]: must be an integer, got string 'a'"),
    (MODEL + "input_shape = []\n", "models.m.input_shape: must not be empty"),
    (MODEL + "shortcut = 'skip'\n", "models.m: unknown shortcut 'skip'"),
    (MODEL + "probes = ['grad-flow']\ngates = { min_rank1_distance = 0.1 }\n",
     "models.m.gates.min_rank1_distance: needs probe 'rank', which this model does not run"),
    (MODEL + "loss = 'mse'\n", "models.m.loss: applies to your own models ('model') only"),
    (MODEL + "tokens = 8\n", "models.m.tokens: applies to your own models ('model') only"),
    (MODEL + "blocks = 'layer'\n", "models.m.blocks: applies to your own models ('model') only"),
    (USER.replace("'m'", "'u'").replace(":f", "") , "models.u.model: must be package.module:callable"),
    ('[[models]]\nname = "u"\nmodel = ":b"\ninput_shape = [3]\n',
     "models.u.model: must be package.module:callable, got string ':b'"),
    ('[[models]]\nname = "u"\nmodel = "a:b"\n',
     "models.u: needs exactly one of 'input_shape' (float inputs) or 'tokens' (token ids)"),
    (USER + "tokens = 16\n", "models.m: needs exactly one of 'input_shape' (float inputs) or 'tokens'"),
    (USER.replace("input_shape = [3]", "tokens = 0"), "models.m.tokens: must be ≥ 1, got 0"),
    (USER.replace("input_shape = [3]", "tokens = 8\nvocab = 1"), "models.m.vocab: must be ≥ 2, got 1"),
    (USER + "vocab = 100\n", "models.m: 'vocab' needs 'tokens'"),
    (USER + "blocks = '('\n", "models.m.blocks: is not a valid regular expression"),
    (USER + "blocks = ''\n", "models.m.blocks: must not be empty"),
    (USER.replace("[3]", "[0]"), "models.m.input_shape[0]: must be ≥ 1, got 0"),
    (USER + "num_classes = 1\n", "models.m.num_classes: must be ≥ 2, got 1"),
    (USER + "plain = true\n", "models.m.plain: applies to built-in models ('arch') only"),
    (USER + 'loss = "hinge"\n',
     "models.m.loss: must be 'cross_entropy', 'mse' or 'model', got string 'hinge'"),
    ("x = [1\n", "invalid TOML"),
]


@pytest.mark.parametrize("text, message", BAD, ids=[m for _, m in BAD])
def test_bad_config_names_the_key(tmp_path, text, message):
    got = error(tmp_path, text)
    assert got.startswith(f"{tmp_path / 'resdiag.toml'}: {message}"), got


def test_missing_file(tmp_path):
    with pytest.raises(ResdiagError, match=f"config file not found: {tmp_path / 'no.toml'}"):
        load_config(tmp_path / "no.toml")


def test_limits_cover_the_metrics():
    assert {x.metric for x in LIMITS.values()} <= set(METRICS)
    assert all(key.startswith(("max_", "min_")) and x.bound == key[:3] for key, x in LIMITS.items())


def test_user_model_keys_pass_through(tmp_path):
    cfg = load(tmp_path, USER + "blocks = 'layers\\.\\d+'\n"
               + USER.replace("'m'", "'lm'").replace("input_shape = [3]", "tokens = 16\nvocab = 50"))
    m, lm = cfg.models
    assert (m.input_shape, m.tokens, m.vocab, m.blocks) == ((3,), None, None, r"layers\.\d+")
    assert (lm.input_shape, lm.tokens, lm.vocab, lm.blocks, lm.factory) == (None, 16, 50, None, "pkg.mod:f")
    assert (m.source, lm.source) == (f"{tmp_path / 'resdiag.toml'}: models.m",
                                     f"{tmp_path / 'resdiag.toml'}: models.lm")
    assert load(tmp_path, MODEL).models[0].tokens is None


@pytest.mark.parametrize("loss", LOSSES)
def test_user_model_takes_every_loss_the_cli_takes(tmp_path, loss):
    """``loss = "model"`` (the output's own loss, as ``--loss model``) is accepted like the others."""
    assert load(tmp_path, USER + f"loss = '{loss}'\n").models[0].loss == loss


def test_zoo_options_are_one_list_for_the_cli_and_the_config():
    """check's ArchModel and the CLI's ModelOptions both read resdiag/run/spec_fields.ZOO_OPTIONS."""
    from resdiag.cli.options import ModelOptions

    options = {f.name for f in dataclasses.fields(ModelOptions)}
    assert set(ZOO_NAMES) <= set(ArchModel.model_fields) and set(ZOO_NAMES) <= options
    assert set(ArchModel.model_fields) - set(ZOO_NAMES) - set(UserModel.model_fields) == {"arch", "init"}
    assert options - set(ZOO_NAMES) - set(UserModel.model_fields) == {"arch", "checkpoint"}


HF_LM = """
batches = 1
batch_size = 4
rank_batch_size = 8
[[models]]
name = "lm"
model = "tests.run.factories:{factory}"
tokens = 8
loss = "model"
gates = {{ require_healthy = false }}
"""


@pytest.mark.parametrize("factory", ["gpt2", "bert"])
def test_check_runs_an_hf_model_on_its_own_loss(config, cli, tmp_path, factory):
    """End to end: ``resdiag check`` on a HuggingFace factory with ``loss = "model"`` (token ids
    passed as ``labels``): the run records E as the model's own loss, and its grad-flow numbers are
    those of ``resdiag grad-flow --loss model`` on the same factory and seed."""
    pytest.importorskip("transformers")
    path = config(text=HF_LM.format(factory=factory))
    code, out, err = cli("check", "--config", path, "--format", "json")
    assert code in (0, 1), err
    (model,) = json.loads(out)["models"]
    assert model["fingerprint"]["config"]["loss"] == "model"
    gf = tmp_path / "gf.json"
    code, _, err = cli("grad-flow", "--model", f"tests.run.factories:{factory}", "--tokens", 8, "--loss",
                       "model", "--batches", 1, "--batch-size", 4, "--seed", 0, "--json", gf)
    assert code == 0, err
    want = json.loads(gf.read_text())
    assert want["run"]["objective"] == "model"
    for name in ("boundary_ratio", "weight_first_last_ratio"):
        assert model["metrics"][name] == pytest.approx(want["summary"][name], rel=1e-6)


def test_several_errors_give_the_first_and_name_the_others(tmp_path):
    message = error(tmp_path, "seed = 1.5\nbatches = 0\n" + MODEL + "depth = 0\n")  # in file order
    assert message.endswith(": seed: must be an integer, got number 1.5 (and 2 more: batches, models.m.depth)")


@pytest.mark.parametrize("name", ["resdiag.toml", "pyproject.toml"])
def test_a_byte_order_mark_is_skipped(tmp_path, name):
    text = "seed = 4\n" + MODEL
    if name == "pyproject.toml":
        text = "[tool.resdiag]\n" + text.replace("[[models]]", "[[tool.resdiag.models]]")
    path = tmp_path / name
    path.write_bytes("\ufeff".encode() + text.replace("\n", "\r\n").encode())
    assert load_config(path).seed == 4


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "config file not found: {p}"),
    (lambda p: p.mkdir(), "config file {p} is a folder; give a .toml file"),
    (lambda p: p.write_bytes(b"seed = '\xff'\n"), "{p}: not UTF-8 text (byte 8): TOML files are UTF-8"),
    (lambda p: p.write_bytes("\ufeff\ufeffseed = 1\n".encode()), "{p}: invalid TOML"),
])
def test_an_unusable_file_is_one_line(tmp_path, make, message):
    path = tmp_path / "resdiag.toml"
    make(path)
    with pytest.raises(ResdiagError) as exc:
        load_config(path)
    assert str(exc.value).startswith(message.format(p=path)) and "\n" not in str(exc.value)


def test_an_unreadable_file_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "resdiag.toml"
    path.write_text(MODEL)

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(path), "read_bytes", refuse)  # root may read any file: simulate the refusal
    with pytest.raises(ResdiagError, match=r"^cannot read config file .*resdiag.toml: permission denied$"):
        load_config(path)


def test_a_pyproject_whose_tool_is_not_a_table(tmp_path):
    assert "no [tool.resdiag] table" in error(tmp_path, "tool = 3\n", "pyproject.toml")
    assert "tool.resdiag: must be a table" in error(tmp_path, "[tool]\nresdiag = 3\n", "pyproject.toml")


# ---- docs/ci.md is true to the schema -------------------------------------------------------------

DOC = (Path(__file__).resolve().parents[2] / "docs" / "ci.md").read_text()


def test_the_documented_error_lines_are_real(tmp_path):
    """Each example line of docs/ci.md, from a config that has that error."""
    tiny = '[[models]]\nname = "tiny"\narch = "mlp"\n'
    configs = [
        ("pyproject.toml", "[[tool.resdiag.models]]\nname = 'tiny'\narch = 'mlp'\nfoo = 1\n"),
        ("resdiag.toml", "bath_size = 1\n" + tiny),
        ("resdiag.toml", tiny + "depth = 0\n"),
        ("resdiag.toml", "[gates]\nmax_boundary_ratio = 'big'\n" + tiny),
        ("resdiag.toml", "[gates]\nmin_feature_retention = nan\n" + tiny),
        ("resdiag.toml", '[[models]]\nname = "big"\narch = "resnet"\ndepth = 57\n'),
        ("resdiag.toml", "seed = 1.5\n" + tiny + "width = '8'\n"),
    ]
    (block,) = re.findall(r"```text\n(resdiag: error: .*?)```", DOC, flags=re.S)
    lines = block.splitlines()
    assert len(lines) == len(configs)
    for line, (name, text) in zip(lines, configs, strict=True):
        message = error(tmp_path, text, name).replace(str(tmp_path / name), name)
        assert f"resdiag: error: {message}" == line


def _doc_type(annotation, metadata=()) -> str | None:
    """The type column docs/ci.md should show for a field: ``integer ≥ 1``, ``array of strings``."""
    words = {int: "integer", float: "number", bool: "boolean", str: "string"}
    if metadata:
        annotation = typing.Annotated[(annotation, *metadata)]
    bound = ""
    while True:
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is typing.Union or origin is types.UnionType:
            rest = [a for a in args if a is not type(None)]
            if len(rest) > 1:
                return None  # the models array: arch or model tables
            annotation = rest[0]
        elif origin is typing.Annotated:
            annotation = args[0]
            for meta in args[1:]:
                for c in [meta, *getattr(meta, "metadata", [])]:
                    if hasattr(c, "ge"):
                        bound = f" ≥ {c.ge:g}"
                    elif hasattr(c, "gt"):
                        bound = f" > {c.gt:g}"
        elif origin is typing.Literal:
            return "string"
        elif origin is list:
            item = _doc_type(args[0])
            return None if item is None else f"array of {item.replace('integer', 'integers').replace('string', 'strings')}"
        else:
            return words[annotation] + bound if annotation in words else None


@pytest.mark.parametrize("model", [ConfigFile, ArchModel, UserModel, Baseline])
def test_every_key_is_documented_with_its_type_and_range(model):
    rows: dict[str, set[str]] = {}
    for key_, kind in re.findall(r"^\| `([a-z0-9_]+)` \| ([^|]+) \|", DOC, flags=re.M):
        rows.setdefault(key_, set()).add(kind.strip())
    for name, info in model.model_fields.items():
        assert name in rows, f"docs/ci.md has no row for {name}"
        expected = _doc_type(info.annotation, info.metadata)
        if expected is not None:
            assert expected in rows[name], (name, expected, rows[name])


def test_every_gate_is_documented_with_its_range():
    for k, limit in LIMITS.items():
        (row,) = re.findall(rf"^\| `{k}` \| number or `false` \| [^|]+ \| ([^|]+) \| `([a-z0-9_]+)` \|", DOC,
                            flags=re.M)
        assert row == (METRIC_RANGES[limit.metric].text(), limit.metric), k


def test_top_level_defaults_are_documented():
    for name, value in {**dataclasses.asdict(RunSettings()), "seed": 0, "device": "cpu"}.items():
        shown = json.dumps(list(value) if isinstance(value, tuple) else value)
        assert re.search(rf"^\| `{name}` \| [^|]+ \| `{re.escape(shown)}` \|", DOC, flags=re.M), name


def test_a_model_is_named_by_its_position_when_its_name_is_not_unique(tmp_path):
    assert error(tmp_path, MODEL + MODEL + "depth = 0\n").endswith(": models[1].depth: must be ≥ 1, got 0")


# ---- any TOML value under any key: a config or one ResdiagError line, never another exception ---

_SCALARS = st.one_of(st.integers(-3, 70), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                     st.sampled_from(["", "rank", "grad-flow", "resnet8", "mlp", "pkg.mod:f", "(", "a b",
                                      "rel:5%", "cpu", "eval", "synthetic", "identity", "m"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.sampled_from(["name", "arch", "x"]),
                                                                        inner, max_size=2)), max_leaves=4)
_KEYS = sorted({*ConfigFile.model_fields, *ArchModel.model_fields, *UserModel.model_fields, *LIMITS, "bogus"})
_ENTRY = st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=4)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(top=_ENTRY, entries=st.lists(st.fixed_dictionaries(
    {"name": st.sampled_from(["m", "n", "a b"])}, optional={"arch": st.just("resnet8"),
                                                            "model": st.just("pkg.mod:f")}).flatmap(
    lambda base: _ENTRY.map(lambda extra: {**base, **extra})), max_size=2))
def test_any_value_gives_a_config_or_one_error_line(tmp_path, top, entries):
    from resdiag.check.config import parse_config

    data = {**top, "models": entries} if entries or "models" not in top else top
    try:
        parse_config(data, "", tmp_path / "resdiag.toml")
    except ResdiagError as exc:
        message = str(exc)
        assert message.startswith(f"{tmp_path / 'resdiag.toml'}: ") and "\n" not in message, message
