"""Training throughput: harness's fine-tuning loop vs a plain torch loop, same model, same batches.

    python bench/bench_train.py                       # a small random GPT-2 (fast)
    python bench/bench_train.py --model smollm2-135m-instruct --lora-rank 8 --steps 6

The reference loop is the minimum any trainer does: forward, cross-entropy, backward,
AdamW step, on pre-collated batches. The harness loop (``Trainer.run``) adds
collation on the fly, gradient clipping, the LR schedule and bookkeeping; the ratio
shows what that costs. Evaluation and checkpointing are left out of both (they
depend on --eval-every, not on the loop). Tokens are input tokens (padding included),
as LLMs-from-scratch counts them.
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

        module = tiny_gpt2_module(0, n_embd=256, n_layer=4, n_head=4, context_length=256)
        tok = gpt2_tokenizer()
    examples, _ = load_examples(None, args.batch_size * args.steps)
    data = encode_examples(tok, get_format(args.format), examples)
    if args.lora_rank:
        torch.manual_seed(0)
        apply_lora(module, LoRAConfig(rank=args.lora_rank, alpha=2 * args.lora_rank))
    else:
        module.requires_grad_(True)
    return module.train(), tok, data


def reference(module, batches, lr: float) -> tuple[int, float]:
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=lr, weight_decay=0.1)
    tokens, start = 0, time.perf_counter()
    for x, y in batches:
        loss = F.cross_entropy(module(x).flatten(0, 1), y.flatten(), ignore_index=-100)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += x.numel()
    return tokens, time.perf_counter() - start


def harness_loop(module, tok, data, args) -> tuple[int, float]:
    from harness.finetune.train import TrainConfig, Trainer

    cfg = TrainConfig(epochs=1, batch_size=args.batch_size, eval_every=10**9, lr=args.lr, max_length=args.max_length,
                      patience=0)
    trainer = Trainer(cfg, module, module, tok.eot_id, data, [], args.max_length, log=lambda s: None,
                      progress_bar=False)
    trainer.p.history.append({})  # skip the step-0 evaluation: not part of the loop being measured
    trainer.evaluate = lambda: {}  # and the epoch-end one
    start = time.perf_counter()
    trainer.run()
    return trainer.p.tokens, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a model spec (default: a small random GPT-2)")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--lora-rank", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--format", default="alpaca")
    ap.add_argument("--repeats", type=int, default=5, help="alternate the two loops this many times")
    args = ap.parse_args()

    from harness.finetune.collate import batches, collate
    from harness.finetune.train import epoch_order

    module, tok, data = build(args)
    init = copy.deepcopy(module.state_dict())
    order = epoch_order(len(data), 123, 0)  # the order Trainer uses for seed 123, epoch 0
    fixed = [collate(b, tok.eot_id, args.max_length) for b in batches(data, order, args.batch_size)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(fixed)} steps x batch "
          f"{args.batch_size}; {sum(p.numel() for p in module.parameters() if p.requires_grad) / 1e6:.2f}M trainable")
    reference(copy.deepcopy(module), fixed[:1], args.lr)  # warm-up: first optimizer step imports torch._dynamo
    best = {"reference": 0.0, "harness": 0.0}
    ratios = []
    for r in range(args.repeats):
        rates = {}
        for name in (("reference", "harness") if r % 2 == 0 else ("harness", "reference")):
            module.load_state_dict(init)
            torch.manual_seed(0)
            n, secs = reference(module, fixed, args.lr) if name == "reference" else harness_loop(module, tok, data, args)
            rates[name] = n / secs
            best[name] = max(best[name], rates[name])
            print(f"  run {r + 1} {name:9s}: {n} tokens in {secs:6.2f} s = {rates[name]:8.1f} tokens/s")
        ratios.append(rates["harness"] / rates["reference"])
    ratio = best["harness"] / best["reference"]
    median = statistics.median(ratios)
    print(f"harness / reference tokens per second: {ratio:.3f} best-of-{args.repeats} "
          f"(harness {best['harness']:.1f}, reference {best['reference']:.1f}); median of paired runs {median:.3f}")
    assert math.isfinite(ratio)


if __name__ == "__main__":
    main()
