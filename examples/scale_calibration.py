"""What breaks when every weight is multiplied by 10: the measurements behind resdiag's weight-scale
rule (docs/gradflow.md, "Weight scale"). Run from the repository root:

    python examples/scale_calibration.py --steps 300 --seeds 0 1
    python examples/scale_calibration.py --steps 300 --seeds 0 --opt sgd --lr 0.05 \
        --models gpt2 transformer6 resnet20

For tiny HF GPT-2, Llama and BERT configs (random init), GPT-2 at width 256, the zoo's pre-LN and
post-LN transformers and a zoo ResNet-20, intact and with every weight matrix x10, at initialisation
and after ``--steps`` Adam steps on learnable data (tokens from a fixed random Markov chain; sklearn
digits for the ResNet), it prints:

- gain: per-matmul weight gain RMS(W) * sqrt(fan_in) (He et al. 2015; Glorot & Bengio 2010: about 1
  to sqrt(2) preserves the forward variance), median and max over the model's matmuls;
- stream: ||x_L|| / ||x_0|| over the block boundaries (forward, RMS per token);
- attn H: mean attention entropy over heads and queries / ln(keys), the lowest layer's
  (Zhai et al. 2023);
- loss - ln C: the loss at the step minus the loss of the uniform prediction;
- loss end: the training loss after ``--steps`` steps (mean of the last 20);
- rule: whether ``scale.gain`` (resdiag/diagnosis/scale.py, the rule this calibrates) fires.
"""

from __future__ import annotations

import argparse
import math
import statistics

import torch
import torch.nn.functional as F

from resdiag.diagnosis.scale import weight_scale
from resdiag.metrics.scale import weight_gain
from resdiag.probes.layers import MATMUL_KINDS, find_blocks, find_layers
from tests.models.support import scale_weights  # the "x10 weights" fault of the model tests

VOCAB, SEQ, BATCH = 64, 16, 32


def _hf(name: str, width: int = 32):
    import transformers

    transformers.logging.set_verbosity_error()
    common = dict(vocab_size=VOCAB, bos_token_id=0, eos_token_id=0)
    if name == "gpt2":
        cfg = transformers.GPT2Config(n_layer=3, n_embd=width, n_head=4, n_positions=SEQ, resid_pdrop=0.0,
                                      embd_pdrop=0.0, attn_pdrop=0.0, **common)
        return transformers.GPT2LMHeadModel(cfg)
    if name == "llama":
        cfg = transformers.LlamaConfig(num_hidden_layers=3, hidden_size=width, intermediate_size=2 * width,
                                       num_attention_heads=4, num_key_value_heads=2, pad_token_id=0,
                                       max_position_embeddings=SEQ, **common)
        return transformers.LlamaForCausalLM(cfg)
    cfg = transformers.BertConfig(num_hidden_layers=3, hidden_size=width, intermediate_size=2 * width,
                                  num_attention_heads=4, vocab_size=VOCAB, max_position_embeddings=SEQ,
                                  num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                  pad_token_id=0)
    return transformers.BertForSequenceClassification(cfg)


def _zoo(arch: str, **options):
    from resdiag.zoo import build, resolve

    return build(resolve(arch, **options))


MODELS = {
    "gpt2": (lambda: _hf("gpt2"), "lm"),
    "gpt2_w256": (lambda: _hf("gpt2", 256), "lm"),
    "llama": (lambda: _hf("llama"), "lm"),
    "bert": (lambda: _hf("bert"), "cls3"),
    "transformer6": (lambda: _zoo("transformer", depth=6, vocab_size=VOCAB, input_shape=(SEQ,)), "cls10"),
    "postln_transformer6": (lambda: _zoo("transformer", depth=6, placement="postln", vocab_size=VOCAB,
                                         input_shape=(SEQ,)), "cls10"),
    "resnet20": (lambda: _zoo("resnet", depth=20), "digits"),
}


class Data:
    """Learnable batches: ids from a fixed random Markov chain (peaked rows), labels a function of
    the first token; sklearn's 8x8 digits upsampled to 3 x 32 x 32 for the ResNet."""

    def __init__(self, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.g = g
        self.trans = torch.softmax(3.0 * torch.randn(VOCAB, VOCAB, generator=g), dim=1)
        from sklearn.datasets import load_digits

        d = load_digits()
        x = torch.tensor(d.images, dtype=torch.float32) / 16.0
        x = x.repeat_interleave(4, 1).repeat_interleave(4, 2)[:, None].expand(-1, 3, -1, -1)
        self.images, self.digits = (x - 0.3) / 0.4, torch.tensor(d.target)

    def batch(self, kind: str):
        if kind == "digits":
            i = torch.randint(0, len(self.digits), (BATCH,), generator=self.g)
            return self.images[i], self.digits[i]
        ids = [torch.randint(0, VOCAB, (BATCH,), generator=self.g)]
        for _ in range(SEQ - 1):
            ids.append(torch.multinomial(self.trans[ids[-1]], 1, generator=self.g)[:, 0])
        ids = torch.stack(ids, 1)
        return ids, ({"lm": ids, "cls3": ids[:, 0] % 3, "cls10": ids[:, 0] % 10}[kind])


def loss_of(kind: str, out, y):
    logits = out.logits if hasattr(out, "logits") else out
    if kind == "lm":
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), y[:, 1:].reshape(-1))
    return F.cross_entropy(logits, y)


def classes(kind: str) -> int:
    return {"lm": VOCAB, "cls3": 3, "cls10": 10, "digits": 10}[kind]


def stream_ratio(model, x) -> float:
    """||x_L|| / ||x_0||: the residual stream's RMS at the last block boundary over the first."""
    blocks = [m for _, m in find_blocks(model)]
    seen: list[torch.Tensor] = []

    def first(tensor):
        if isinstance(tensor, (tuple, list)):
            return tensor[0]
        return getattr(tensor, "last_hidden_state", tensor)

    hooks = [blocks[0].register_forward_pre_hook(lambda m, a, k: seen.append(first(a or tuple(k.values()))),
                                                 with_kwargs=True)]
    hooks += [blocks[-1].register_forward_hook(lambda m, a, o: seen.append(first(o)))]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    rms = [float(t.double().square().mean().sqrt()) for t in seen[:2]]
    return rms[1] / rms[0]


def attention_entropy(model, x) -> float:
    """The lowest layer's mean attention entropy / ln(keys). HF: ``output_attentions``; the zoo's
    transformer: recomputed from the packed qkv projection."""
    if hasattr(model, "config") and hasattr(model.config, "_attn_implementation"):
        model.config._attn_implementation = "eager"
        with torch.no_grad():
            att = model(x, output_attentions=True).attentions
        probs = list(att)
    elif hasattr(model, "layers") and hasattr(model.layers[0], "attn"):
        probs = []
        hooks = [layer.attn.qkv.register_forward_hook(
                     lambda m, a, o, h=layer.attn.heads: probs.append(_softmax(o, h)))
                 for layer in model.layers]
        with torch.no_grad():
            model(x)
        for h in hooks:
            h.remove()
    else:
        return math.nan
    ent = []
    for p in probs:
        p = p.double()
        keys = (p > 0).sum(-1).double()  # causal rows see fewer keys (masked probabilities are 0)
        h = -torch.special.xlogy(p, p).sum(-1)
        h = (h / keys.log())[keys > 1]  # a row with one key has no choice to make
        ent.append(float(h.mean()))
    return min(ent)


def _softmax(qkv, heads):
    b, t, d3 = qkv.shape
    q, k, _ = qkv.reshape(b, t, 3, heads, d3 // 3 // heads).permute(2, 0, 3, 1, 4)
    return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1)


def snapshot(model, kind, x, y) -> dict[str, float]:
    gains = [weight_gain(la.matrix) for la in find_layers(model) if la.kind in MATMUL_KINDS]
    with torch.no_grad():
        loss = float(loss_of(kind, model(x), y))
    return {"gain_med": statistics.median(gains), "gain_max": max(gains), "stream": stream_ratio(model, x),
            "attn_H": attention_entropy(model, x), "excess": loss - math.log(classes(kind))}


def train(model, kind, data: Data, steps: int, lr: float, opt_name: str = "adam") -> float:
    opt = torch.optim.Adam(model.parameters(), lr=lr) if opt_name == "adam" else \
        torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    for _ in range(steps):
        x, y = data.batch(kind)
        loss = loss_of(kind, model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return statistics.fmean(losses[-20:]) if losses else math.nan


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--opt", choices=["adam", "sgd"], default="adam", help="adam, or SGD with momentum 0.9")
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    args = ap.parse_args()
    torch.set_num_threads(1)

    cols = ["gain_med", "gain_max", "stream", "attn_H", "excess"]
    print(f"{'model':22} {'x':>3} {'seed':>4} {'when':>5} " + " ".join(f"{c:>9}" for c in cols)
          + f" {'loss end':>9}  rule")
    for name in args.models:
        make, kind = MODELS[name]
        for seed in args.seeds:
            for factor in (1.0, 10.0):
                torch.manual_seed(seed)
                model = scale_weights(make(), factor).train()
                data = Data(seed)
                x, y = data.batch(kind)
                rows = [("init", snapshot(model, kind, x, y), math.nan)]
                end = train(model, kind, data, args.steps, args.lr, args.opt)
                rows.append(("train", snapshot(model, kind, x, y), end))
                for when, snap, loss_end in rows:
                    rule = "scale.gain" if weight_scale(snap["gain_med"]) else "-"
                    print(f"{name:22} {factor:3g} {seed:4d} {when:>5} "
                          + " ".join(f"{snap[c]:9.3g}" for c in cols) + f" {loss_end:9.3g}  {rule}")


if __name__ == "__main__":
    main()
