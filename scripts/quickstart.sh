#!/usr/bin/env bash
# The whole loop on the embedded default model (SmolLM2-135M-Instruct), offline:
#   1. a short LoRA fine-tune on the bundled instruction data (LLMs-from-scratch ch07, Alpaca style),
#   2. harness run of the fine-tuned model against its base on MMLU and SQuAD subsets,
#   3. the HTML report.
# About 22 minutes on 2 CPU cores (measured, install included). Usage: scripts/quickstart.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/quickstart-$(date +%Y%m%d-%H%M%S)}"
harness="${HARNESS:-.venv/bin/harness}"
start=$(date +%s)
"$harness" finetune --limit 200 --lora-rank 8 --max-length 256 --epochs 1 --out "$out/smollm2-lora"
"$harness" run --model "$out/smollm2-lora" --base smollm2-135m-instruct --suite mmlu,squad \
  --limit mmlu=2 --limit squad=50 --out "$out/eval"
echo "quickstart finished in $(( $(date +%s) - start )) s" >&2
echo "fine-tuned checkpoint, loss curve, test responses: $out/smollm2-lora/" >&2
echo "report (model vs base): $out/eval/index.html" >&2
