"""The model zoo: configs (pure data) and the networks built from them."""

from __future__ import annotations

from resdiag.zoo.config import (
    MLPConfig,
    ModelConfig,
    ResNetConfig,
    Shortcut,
    TransformerConfig,
    parse_shortcut,
    twin,
)
from resdiag.zoo.registry import FAMILIES, PRESETS, resolve


def build(cfg: ModelConfig):
    """The ``nn.Module`` for a config (imports torch on first use)."""
    if isinstance(cfg, MLPConfig):
        from resdiag.zoo.mlp import MLP

        return MLP(cfg)
    if isinstance(cfg, TransformerConfig):
        from resdiag.zoo.transformer import Transformer

        return Transformer(cfg)
    from resdiag.zoo.resnet import CifarResNet

    return CifarResNet(cfg)


__all__ = [
    "FAMILIES", "PRESETS", "MLPConfig", "ModelConfig", "ResNetConfig", "Shortcut", "TransformerConfig",
    "build", "parse_shortcut", "resolve", "twin",
]
