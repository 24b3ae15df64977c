"""``resdiag models``: the registered architectures and families, and the variant syntax."""

from __future__ import annotations

from resdiag.cli.common import console


def models() -> None:
    """List the registered architectures and families, and the variant syntax."""
    from resdiag.report.listings import family_table, preset_table
    from resdiag.zoo import FAMILIES, PRESETS

    out = console()
    out.print(family_table(FAMILIES.values()))
    out.print(preset_table([(name, getattr(cfg, "block", "linear"), _param_count(cfg))
                            for name, cfg in PRESETS.items()]))
    out.print("variants: --shortcut identity | scale:LAM[,F_SCALE] | gate[:B_G] | shortcut_gate[:B_G] | "
              "conv | dropout[:P];  --placement post | bn_after_add | relu_before_add | relu_preact | "
              "preact;  --norm batch | none;  --projection A | B;  --width W;  --plain")


def _param_count(cfg) -> str:
    """Closed-form-free count: build on the meta device, so nothing is allocated."""
    import torch

    from resdiag.zoo import build

    with torch.device("meta"):
        model = build(cfg)
    return f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M"
