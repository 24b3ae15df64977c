"""``resdiag models``: the registered architectures and families, and the variant syntax."""

from __future__ import annotations

from resdiag.cli.common import console


def models() -> None:
    """List the registered architectures and families, and the variant syntax."""
    from rich.table import Table

    from resdiag.zoo import FAMILIES, PRESETS

    t = Table(title="families: NAME (with --depth) or NAME<depth>, e.g. resnet62, plain_mlp1000")
    for col in ("family", "valid depths", "default depth", "description"):
        t.add_column(col)
    for f in FAMILIES.values():
        t.add_row(f.name, f.depths, str(f.default_depth), f.doc)
    p = Table(title="registered names")
    for col in ("name", "block", "parameters"):
        p.add_column(col)
    for name, cfg in PRESETS.items():
        p.add_row(name, getattr(cfg, "block", "linear"), _param_count(cfg))
    out = console()
    out.print(t)
    out.print(p)
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
