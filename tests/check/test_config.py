"""Config parsing: every key typed and checked, every error naming the file and the key."""

import pytest

from resdiag.check.config import RunSettings, load_config
from resdiag.check.metrics import LIMITS, METRICS
from resdiag.diagnosis.thresholds import GradThresholds, RankThresholds
from resdiag.errors import ResdiagError
from resdiag.zoo import resolve

MODEL = '[[models]]\nname = "m"\narch = "resnet8"\n'


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
    assert message.endswith("unknown key 'tool.resdiag.sede' (did you mean 'seed'?)")
    assert "no [tool.resdiag]" in error(tmp_path, "[project]\nname = 'x'\n", "pyproject.toml")


BAD = [
    (MODEL + "foo = 1\n", "unknown key 'models[0].foo'"),
    ("bogus = 1\n" + MODEL, "unknown key 'bogus'"),
    ("[gates]\nmax_ratio = 1\n" + MODEL, "unknown key 'gates.max_ratio'"),
    ("[baseline]\ntolerance = { nope = 'rel:5%' }\n" + MODEL, "unknown key 'baseline.tolerance.nope'"),
    (MODEL + "gates = { min_feature = 1 }\n", "unknown key 'models[0].gates.min_feature'"),
    ("[tool.resdiag]\nseed = 1\n", "unknown key 'tool'"),
    ("seed = 1.5\n" + MODEL, "'seed' must be an integer, got number 1.5"),
    ("seed = true\n" + MODEL, "'seed' must be an integer, got boolean True"),
    ("batches = 0\n" + MODEL, "'batches' must be >= 1"),
    ("rank_batch_size = 1\n" + MODEL, "'rank_batch_size' must be >= 2"),
    ("probes = ['grad_flow']\n" + MODEL, "'probes' must list some of grad-flow, rank"),
    ("probes = []\n" + MODEL, "'probes' must list"),
    ("probes = 'rank'\n" + MODEL, "'probes' must be an array, got string 'rank'"),
    ("mode = 'test'\n" + MODEL, "'mode' must be train or eval"),
    ("device = 'gpu'\n" + MODEL, "'device' must be auto, cpu, cuda or cuda:N"),
    ("data = 'cifar10:/no/such/dir'\n" + MODEL, "'data' is not usable"),
    ("[gates]\nmax_boundary_ratio = 'big'\n" + MODEL,
     "'gates.max_boundary_ratio' must be a number, or false"),
    ("[gates]\nmax_boundary_ratio = true\n" + MODEL, "or false to turn the gate off; got boolean True"),
    ("[gates]\nmax_boundary_ratio = nan\n" + MODEL, "must be a finite number"),
    ("[gates]\nrequire_healthy = 1\n" + MODEL, "'gates.require_healthy' must be a boolean"),
    ("gates = 3\n" + MODEL, "'gates' must be a table"),
    ("[baseline]\ntolerance = { boundary_ratio = '5%' }\n" + MODEL,
     "'baseline.tolerance.boundary_ratio' is not a tolerance"),
    ("[baseline]\nfile = 3\n" + MODEL, "'baseline.file' must be a string"),
    ("seed = 1\n", "no models to check: add a [[models]] table"),
    ("models = [1]\n", "'models[0]' must be a table, got integer 1"),
    ('[[models]]\narch = "resnet8"\n', "missing key 'models[0].name'"),
    ('[[models]]\nname = "a b"\narch = "resnet8"\n', "'models[0].name' must be letters"),
    (MODEL + MODEL, "'models[1].name' repeats the name 'm' of 'models[0]'"),
    ('[[models]]\nname = "m"\n', "'models[0]' needs exactly one of 'arch'"),
    (MODEL + 'model = "a:b"\n', "needs exactly one of 'arch'"),
    (MODEL + "depth = 57\n", "'models[0]': --arch resnet8 has depth 8"),
    ('[[models]]\nname = "m"\narch = "resnet"\ndepth = 57\n', "depth 57 is not valid"),
    (MODEL + "width = '1'\n", "'models[0].width' must be a number, got string '1'"),
    (MODEL + "input_shape = [3, 'a']\n", "'models[0].input_shape[1]' must be an integer"),
    (MODEL + "shortcut = 'skip'\n", "unknown shortcut 'skip'"),
    (MODEL + "probes = ['grad-flow']\ngates = { min_rank1_distance = 0.1 }\n",
     "'models[0].gates.min_rank1_distance' needs probe 'rank'"),
    (MODEL + "loss = 'mse'\n", "unknown key 'models[0].loss'"),
    ('[[models]]\nname = "u"\nmodel = "nocolon"\ninput_shape = [3]\n', "must be package.module:callable"),
    ('[[models]]\nname = "u"\nmodel = "a:b"\n', "missing key 'models[0].input_shape'"),
    ('[[models]]\nname = "u"\nmodel = "a:b"\ninput_shape = [0]\n', "must be positive integers"),
    ('[[models]]\nname = "u"\nmodel = "a:b"\ninput_shape = [3]\nnum_classes = 1\n', "must be >= 2"),
    ('[[models]]\nname = "u"\nmodel = "a:b"\ninput_shape = [3]\nplain = true\n',
     "'models[0].plain' applies to built-in models"),
    ('[[models]]\nname = "u"\nmodel = "a:b"\ninput_shape = [3]\nloss = "hinge"\n',
     "'models[0].loss' must be cross_entropy or mse"),
    ("x = [1\n", "invalid TOML"),
]


@pytest.mark.parametrize("text, message", BAD, ids=[m for _, m in BAD])
def test_bad_config_names_the_key(tmp_path, text, message):
    assert message in error(tmp_path, text)


def test_missing_file(tmp_path):
    with pytest.raises(ResdiagError, match=f"config file not found: {tmp_path / 'no.toml'}"):
        load_config(tmp_path / "no.toml")


def test_limits_cover_the_metrics():
    assert {x.metric for x in LIMITS.values()} <= set(METRICS)
    assert all(key.startswith(("max_", "min_")) and x.bound == key[:3] for key, x in LIMITS.items())
