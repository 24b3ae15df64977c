import pytest
import torch

from resdiag.errors import ResdiagError
from resdiag.zoo import PRESETS, build, parse_shortcut, resolve, twin
from resdiag.zoo.config import PLACEMENTS, MLPConfig, Shortcut, nearest_depths
from resdiag.zoo.registry import Family, register, register_family
from tests.support import ALL_SMALL


def n_params(cfg) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in build(cfg).parameters())


@pytest.mark.parametrize(
    "depth, millions",
    [(20, 0.27), (32, 0.46), (44, 0.66), (56, 0.85), (110, 1.7), (1202, 19.4)],
)
def test_parameter_counts_match_he_et_al_2015_table6(depth, millions):
    # As precise as the paper states it: 0.27M to 0.005M, 19.4M to 0.05M.
    decimals = len(str(millions).split(".")[1])
    count = n_params(resolve(f"resnet{depth}"))
    assert abs(count / 1e6 - millions) <= 0.5 * 10**-decimals


@pytest.mark.parametrize("name, millions", [("resnet164", 1.7), ("resnet1001", 10.2)])
def test_bottleneck_parameter_counts_match_he_et_al_2016(name, millions):
    cfg = resolve(name)
    assert cfg.block == "bottleneck"
    assert float(f"{n_params(cfg) / 1e6:.2g}") == pytest.approx(millions, rel=0.02)


def test_plain_twin_has_the_same_weights_as_option_a_resnet():
    assert n_params(resolve("plain56")) == n_params(resolve("resnet56"))
    assert twin(resolve("resnet56")) == resolve("plain56")


@pytest.mark.parametrize("depth, expected", [(57, [56, 62]), (21, [20, 26]), (3, [8, 14])])
def test_invalid_depth_names_nearest_valid(depth, expected):
    assert nearest_depths(depth, "basic") == expected
    with pytest.raises(ResdiagError, match=f"try {expected[0]}"):
        resolve("resnet", depth)


def test_bottleneck_depth_rules():
    assert resolve("resnet", 29).block == "bottleneck"  # 9*3+2, not 6n+2
    with pytest.raises(ResdiagError, match="9n\\+2"):
        resolve("resnet", 30, block="bottleneck")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("identity", Shortcut()),
        ("scale:0.5", Shortcut("scale", lam=0.5)),
        ("scale:0.5,0.5", Shortcut("scale", lam=0.5, f_scale=0.5)),
        ("gate:-6", Shortcut("gate", gate_bias=-6)),
        ("shortcut_gate", Shortcut("shortcut_gate", gate_bias=-6)),
        ("conv", Shortcut("conv")),
        ("dropout:0.3", Shortcut("dropout", p=0.3)),
    ],
)
def test_parse_shortcut(text, expected):
    assert parse_shortcut(text) == expected


@pytest.mark.parametrize("bad", ["nope", "scale", "scale:x", "scale:1,2,3", "dropout:1.5", "conv:3",
                                 "scale:nan", "gate:1,2"])
def test_parse_shortcut_rejects(bad):
    with pytest.raises(ResdiagError):
        parse_shortcut(bad)


def test_arch_resolution():
    assert resolve(None, 56, plain=True).name == "plain56"
    assert resolve("resnet62").depth == 62
    assert resolve("preact_resnet164").placement == "preact"
    assert resolve("mlp", 1000, plain=True) == MLPConfig(depth=1000, plain=True)
    with pytest.raises(ResdiagError, match="conflicts"):
        resolve("resnet110", 56)
    with pytest.raises(ResdiagError, match="did you mean"):
        resolve("resnet_110x")
    with pytest.raises(ResdiagError, match="--plain has no shortcut"):
        resolve("resnet20", plain=True, shortcut=Shortcut("scale", lam=0.5))


def test_registry_rejects_duplicates():
    with pytest.raises(ValueError):
        register("resnet56", resolve("resnet56"))
    with pytest.raises(ValueError):
        register_family(Family("mlp", lambda d: MLPConfig(depth=d), 1, "", ""))




@pytest.mark.parametrize("cfg", ALL_SMALL, ids=lambda c: f"{c.name}-{getattr(c, 'shortcut', '')}")
def test_every_variant_builds_runs_and_has_no_inplace_ops(cfg):
    torch.manual_seed(0)
    model = build(cfg)
    x = torch.randn(4, *cfg.input_shape, requires_grad=True)
    out = model(x)
    assert out.shape == (4, cfg.num_classes)
    out.sum().backward()
    if cfg.family == "transformer":  # token ids: the gradient stops at the embedding table
        x = model.embed.weight
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for m in model.modules():
        assert not getattr(m, "inplace", False), m


def test_placements_differ_in_structure():
    structures = {p: str(build(resolve("resnet8", placement=p, width=0.25))) for p in PLACEMENTS}
    assert len(set(structures.values())) == len(PLACEMENTS)


def test_preset_names_round_trip():
    for name, cfg in PRESETS.items():
        assert cfg.name == name


def test_transformer_family_names_placements_and_twins():
    cfg = resolve("transformer", 48, placement="postln")
    assert cfg.name == "postln_transformer48" and resolve(cfg.name) == cfg
    assert twin(cfg) == resolve("postln_plain_transformer48")
    assert resolve("transformer").placement == "preln"
    with pytest.raises(ResdiagError, match="placement"):
        resolve("transformer", 6, placement="post")
    with pytest.raises(ResdiagError, match="does not apply to a transformer"):
        resolve("transformer", 6, block="basic")
    with pytest.raises(ResdiagError, match="even multiple"):
        resolve("transformer", 6, width=30)
    with pytest.raises(ResdiagError, match="SEQ_LEN"):
        resolve("transformer", 6, input_shape=(3, 8, 8))


def test_transformer_placements_and_twins_differ_where_they_should():
    from resdiag.zoo.blocks import BranchOnly, Sum

    torch.manual_seed(0)
    pre, post = build(resolve("transformer2")), build(resolve("postln_transformer2"))
    plain = build(resolve("plain_transformer2"))
    assert isinstance(pre.layers[0].add1, Sum) and isinstance(plain.layers[0].add1, BranchOnly)
    assert isinstance(post.norm, torch.nn.Identity) and isinstance(pre.norm, torch.nn.LayerNorm)
    assert [n for n, _ in plain.named_parameters()] == [n for n, _ in pre.named_parameters()]


def test_transformer_maps_gaussian_floats_to_uniform_ids_and_keeps_int_ids():
    from resdiag.zoo.transformer import as_token_ids

    ids = as_token_ids(torch.randn(200_000, generator=torch.Generator().manual_seed(0)), 8)
    counts = torch.bincount(ids, minlength=8).double() / ids.numel()
    assert counts.min() > 0.12 and counts.max() < 0.13  # 1/8 each
    given = torch.tensor([[3, 1, 7]])
    assert torch.equal(as_token_ids(given, 8), given)


def test_transformer_post_ln_sublayer_order_by_hand():
    torch.manual_seed(0)
    model = build(resolve("postln_transformer1", width=8, heads=2)).double()
    layer = model.layers[0]
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    h = layer.ln1(x + layer.attn(x))
    assert torch.allclose(layer(x), layer.ln2(h + layer.mlp(h)))
    pre = build(resolve("transformer1", width=8, heads=2)).double().layers[0]
    h = x + pre.attn(pre.ln1(x))
    assert torch.allclose(pre(x), h + pre.mlp(pre.ln2(h)))
