"""Training throughput: harness's fine-tuning loop vs a plain torch loop, same model, same data.

    python bench/bench_train.py                       # a small random GPT-2 (fast)
    python bench/bench_train.py --model smollm2-135m-instruct --lora-rank 8 --steps 6

The plain loop is what a first trainer does: shuffled batches padded to their longest
text, forward, cross-entropy, backward, AdamW step, on pre-collated batches (it does
not even pay for collation). The harness loop (``Trainer.run``) collates on the fly,
clips gradients, schedules the learning rate, and groups texts of similar length
into batches so little padding is computed. Both see the same records once, so
tokens/s counts real (non-padding) tokens and the ratio is the time ratio.

It also prints the achieved training FLOP/s, (4 N + 2 N_trainable) x tokens / s (forward 2N,
gradients of the activations 2N, of the trainable weights 2 N_trainable: 6N for full
fine-tuning), against
this machine's float32 matmul rate measured here (torch.matmul: 2048^3 and the LM head's shape).
"""
from __future__ import annotations

import argparse
import copy
import math
import statistics
import time

import torch
import torch.nn.functional as F


def build(args):
    from harness.finetune.collate import encode_examples
    from harness.finetune.data import load_examples
    from harness.finetune.lora import LoRAConfig, apply_lora
    from harness.prompts import get_format

    if args.model:
        from harness.models import load_model

        lm = load_model(args.model)
        module, tok = lm.module.float(), lm.tokenizer
    else:
        from harness.models.tokenizer import gpt2_tokenizer
        from harness.testing import tiny_gpt2_module

        module = tiny_gpt2_module(0, n_embd=128, n_layer=4, n_head=2, context_length=args.max_length)
        tok = gpt2_tokenizer()
    examples, _ = load_examples(args.data, args.batch_size * args.steps)
    data = encode_examples(tok, get_format(args.format), examples)
    if args.lora_rank:
        torch.manual_seed(0)
        apply_lora(module, LoRAConfig(rank=args.lora_rank, alpha=2 * args.lora_rank))
    else:
        module.requires_grad_(True)
    return module.train(), tok, data


def plain(module, batches, lr: float) -> float:
    """Seconds for one pass of the plain loop over pre-collated padded batches."""
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=lr, weight_decay=0.1)
    start = time.perf_counter()
    for x, y in batches:
        loss = F.cross_entropy(module(x).flatten(0, 1), y.flatten(), ignore_index=-100)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def harness_loop(module, tok, data, args) -> tuple[float, int]:
    """Seconds for one epoch of ``Trainer.run`` (evaluations left out) and the padded tokens it computed."""
    from harness.finetune.train import TrainConfig, Trainer

    cfg = TrainConfig(epochs=1, batch_size=args.batch_size, eval_every=10**9, lr=args.lr, max_length=args.max_length,
                      patience=0)
    trainer = Trainer(cfg, module, module, tok.eot_id, data, [], args.max_length, log=lambda s: None,
                      progress_bar=False)
    trainer.p.history.append({})  # skip the step-0 evaluation: not part of the loop being measured
    trainer.evaluate = lambda: {}  # and the epoch-end one
    start = time.perf_counter()
    trainer.run()
    return time.perf_counter() - start, trainer.p.tokens


def matmul_rate(shapes: list[tuple[int, int, int]], repeats: int = 5) -> float:
    """Best float32 FLOP/s over ``(m, k, n)`` matmuls on this machine (2 m k n FLOPs each): a
    large square one and the model's own biggest (tokens x width x vocabulary, the LM head)."""
    best = 0.0
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        torch.matmul(a, b)
        for _ in range(repeats):
            start = time.perf_counter()
            torch.matmul(a, b)
            best = max(best, 2 * m * k * n / (time.perf_counter() - start))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a model spec (default: a small random GPT-2)")
    ap.add_argument("--data", default=None, help="instruction records (default: the bundled ch07 data)")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--lora-rank", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--format", default="alpaca")
    ap.add_argument("--repeats", type=int, default=2, help="alternate the two loops this many times")
    args = ap.parse_args()

    from harness.finetune.collate import IGNORE_INDEX, batches, collate
    from harness.finetune.train import epoch_order

    module, tok, data = build(args)
    init = copy.deepcopy(module.state_dict())
    order = epoch_order(len(data), 123, 0)  # shuffled, as a plain loop does
    padded = [collate(b, tok.eot_id, args.max_length) for b in batches(data, order, args.batch_size)]
    real = sum(int((y != IGNORE_INDEX).sum()) for _, y in padded)  # the same in both loops
    n_params = sum(p.numel() for p in module.parameters())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(padded)} steps x batch "
          f"{args.batch_size}; {n_params / 1e6:.2f}M parameters, "
          f"{sum(p.numel() for p in module.parameters() if p.requires_grad) / 1e6:.2f}M trainable; "
          f"{real} real tokens, {sum(x.numel() for x, _ in padded)} padded in the plain loop", flush=True)
    plain(copy.deepcopy(module), padded[:1], args.lr)  # warm-up: first optimizer step imports torch._dynamo
    best = {"plain": 0.0, "harness": 0.0}
    ratios = []
    for r in range(args.repeats):
        rates = {}
        for name in (("plain", "harness") if r % 2 == 0 else ("harness", "plain")):
            module.load_state_dict(init)
            torch.manual_seed(0)
            if name == "plain":
                secs, computed = plain(module, padded, args.lr), sum(x.numel() for x, _ in padded)
            else:
                secs, computed = harness_loop(module, tok, data, args)
            rates[name] = real / secs
            best[name] = max(best[name], rates[name])
            print(f"  run {r + 1} {name:7s}: {real} tokens ({computed} computed) in {secs:6.2f} s "
                  f"= {rates[name]:8.1f} tokens/s", flush=True)
        ratios.append(rates["harness"] / rates["plain"])
    ratio = best["harness"] / best["plain"]
    vocab, width = max((p.shape for p in module.parameters() if p.dim() == 2), key=lambda s: s[0])
    peak = matmul_rate([(2048, 2048, 2048), (args.batch_size * 64, width, vocab)])
    n_train = sum(p.numel() for p in module.parameters() if p.requires_grad)
    achieved = {k: (4 * n_params + 2 * n_train) * v for k, v in best.items()}
    print(f"harness / plain tokens per second: {ratio:.3f} best-of-{args.repeats} "
          f"(harness {best['harness']:.1f}, plain {best['plain']:.1f}); median of paired runs "
          f"{statistics.median(ratios):.3f}")
    print(f"achieved (4N + 2N_trainable) x tokens/s: harness {achieved['harness'] / 1e9:.2f} GFLOP/s, plain "
          f"{achieved['plain'] / 1e9:.2f} GFLOP/s; float32 matmul {peak / 1e9:.1f} GFLOP/s "
          f"(harness at {achieved['harness'] / peak:.1%} of it)")
    assert math.isfinite(ratio)


if __name__ == "__main__":
    main()
