"""timm models through resdiag where timm imports (it needs torchvision): a small ViT and a small
ResNet, random init, every boundary and weight norm against torch.autograd.grad / p.grad, and the
verdict; the residual-free ViT's token rank. Used on the GPU machine (benchmarks/gpu_check.sh);
the test suite's version is tests/models/test_timm.py.

    python benchmarks/timm_smoke.py [--device cuda]
"""

from __future__ import annotations

import argparse

import torch
from torch import nn


def check(name: str, model: nn.Module, x: torch.Tensor, blocks: list[nn.Module]) -> None:
    from resdiag.api import Monitor

    y = torch.randint(0, 10, (x.shape[0],), device=x.device)
    xs: list[torch.Tensor] = []
    handles = [b.register_forward_pre_hook(lambda m, a: xs.append(a[0])) for b in blocks]
    handles.append(blocks[-1].register_forward_hook(lambda m, a, o: xs.append(o)))
    loss = nn.functional.cross_entropy(model(x), y)
    for h in handles:
        h.remove()
    params = list(model.named_parameters())
    grads = torch.autograd.grad(loss, [p for _, p in params] + xs)
    want_b = [float(g.double().norm()) for g in grads[len(params):]]
    want_p = {n: float(g.double().norm()) for (n, _), g in zip(params, grads)}
    monitor = Monitor(model, every=1, features=True)
    with monitor.record(0) as rec:
        nn.functional.cross_entropy(model(x), y).backward()
    got_b = [b.grad_norm for b in rec.result.boundaries]
    err_b = max(abs(g - w) / w for g, w in zip(got_b, want_b, strict=True))
    err_p = max(abs(rec.param_norms[n] - w) / w for n, w in want_p.items() if w > 0)
    print(f"{name}: {len(got_b)} boundaries (autograd {len(want_b)}), max rel err boundaries {err_b:.1e}, "
          f"params {err_p:.1e}; grad-flow {rec.result.verdict.status}, rank {rec.rank.verdict.status}, "
          f"token res x_L {rec.rank.summary.token_res_last:.3g}")
    model.zero_grad(set_to_none=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    import timm
    from timm.models.resnet import BasicBlock, ResNet
    from timm.models.vision_transformer import VisionTransformer

    print("timm", timm.__version__, "torch", torch.__version__)
    torch.manual_seed(0)
    dev = args.device
    x = torch.randn(16, 3, 32, 32, device=dev)
    vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=4, num_heads=2,
                            num_classes=10).to(dev)
    check("timm ViT", vit, x, list(vit.blocks))
    vit.set_grad_checkpointing(True)
    check("timm ViT, grad checkpointing", vit, x, list(vit.blocks))
    vit.set_grad_checkpointing(False)
    for b in vit.blocks:  # residual-free: x = F(x) instead of x + F(x)
        b.forward = (lambda blk: lambda t: blk.mlp(blk.norm2(blk.attn(blk.norm1(t)))))(b)
    check("timm ViT, residuals removed", vit, x, list(vit.blocks))
    res = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10).to(dev)
    blocks = [m for m in res.modules() if isinstance(m, BasicBlock)]
    check("timm ResNet", res, x, blocks)


if __name__ == "__main__":
    main()
