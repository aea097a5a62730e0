"""Decoding speed: TokenLM.generate (batched, KV cache) vs a naive loop, same model, same prompts.

    python bench/bench_decode.py                      # the embedded default model
    python bench/bench_decode.py --tiny               # a small random GPT-2 (fast)

The naive loop is what decoding costs without harness's machinery: one sequence at a time, the
whole sequence recomputed at every step (no KV cache), greedy argmax. Both produce the same
tokens (checked); the ratio is tokens per second.
"""
from __future__ import annotations

import argparse
import time

import torch

PROMPTS = [
    "The capital of France is", "Write a haiku about the sea.", "def fibonacci(n):",
    "Question: What is the boiling point of water?\nAnswer:", "Once upon a time, in a small village,",
    "List three primary colours:", "Translate to French: good morning", "The theory of relativity says",
]


def naive(lm, prompt: str, max_tokens: int) -> list[int]:
    ids = lm.tok_encode(prompt) or [lm.prefix_id]
    out: list[int] = []
    for _ in range(max_tokens):
        tok = int(lm.forward(torch.tensor([ids], device=lm.device))[0, -1].argmax())
        if tok in lm.stop_ids:
            break
        ids.append(tok)
        out.append(tok)
    return out


def main() -> None:
    from harness.api import GenerateRequest
    from harness.models import load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model spec (default: the embedded default model)")
    ap.add_argument("--tiny", action="store_true", help="a random GPT-2 (4 layers, 256 wide) instead")
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tiny:
        import tempfile

        from harness.testing import make_tiny_gpt2

        path = make_tiny_gpt2(tempfile.mkdtemp() + "/m", n_embd=256, n_layer=4, n_head=4, context_length=256)
        lm = load_model(str(path), batch_size=args.batch_size)
    else:
        lm = load_model(args.model, batch_size=args.batch_size)
    reqs = [GenerateRequest(p, max_tokens=args.max_tokens, stop=()) for p in PROMPTS]
    with torch.inference_mode():
        lm.generate(reqs[:1], progress=False)  # warm-up
        start = time.perf_counter()
        texts = lm.generate(reqs, progress=False)
        t_ours = time.perf_counter() - start
        start = time.perf_counter()
        ref = [naive(lm, p, args.max_tokens) for p in PROMPTS]
        t_naive = time.perf_counter() - start
    n_ours = sum(len(lm.tok_encode(t, add_special=False)) for t in texts)
    n_naive = sum(len(r) for r in ref)
    same = texts == [lm.tok_decode(r) for r in ref]
    print(f"{len(PROMPTS)} prompts x {args.max_tokens} tokens, batch {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}, model {lm.info.spec}")
    print(f"naive loop (no cache, one sequence): {n_naive / t_naive:8.1f} tokens/s ({t_naive:.1f} s)")
    print(f"TokenLM.generate (batched, KV cache): {n_ours / t_ours:8.1f} tokens/s ({t_ours:.1f} s)")
    print(f"speed-up {(n_ours / t_ours) / (n_naive / t_naive):.2f}x; same text: {same}")


if __name__ == "__main__":
    main()
