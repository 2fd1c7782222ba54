#!/usr/bin/env bash
# The prepared GPU check of issue #18, for the device tool (one GPU; about 5 minutes in all):
#   1. LoRA on a random-weight ~0.5B Qwen2 decoder in bf16: tokens/s, peak memory, adapter size
#      (benchmarks/gpu/decoder_lora.py);
#   2. the same decoder trained by `coldstart-peft train --pairs` under `accelerate launch` with
#      benchmarks/accelerate/fsdp.yaml (one process: FSDP wrapping, sharded loading and saving
#      on one GPU; more GPUs need more devices than the tool lends).
# Results go under ${OUT:-runs/gpu-decoder}: decoder_lora.json, fsdp.log, fsdp_rc.
# Unverified: written while no GPU was lent. Usage: bash benchmarks/gpu/run_decoder_checks.sh
set -u
OUT="${OUT:-runs/gpu-decoder}"
mkdir -p "$OUT"
python benchmarks/gpu/decoder_lora.py --out "$OUT/lora" --steps "${STEPS:-30}" 2>&1 | tail -n 5
cp "$OUT/lora/decoder_lora.json" "$OUT/" 2>/dev/null
python benchmarks/gpu/fsdp_pairs.py "$OUT/pairs.jsonl"
timeout "${FSDP_TIMEOUT:-300}" accelerate launch --config_file benchmarks/accelerate/fsdp.yaml --num_processes 1 \
    -m coldstart_peft.cli train --pairs "$OUT/pairs.jsonl" --out "$OUT/fsdp-adapter" --base-model "$OUT/lora/base" \
    --scorer generative --load-option dtype=bfloat16 --max-steps 5 --batch-size 8 --cv-folds 0 --no-priors \
    --no-progress > "$OUT/fsdp.log" 2>&1
echo $? > "$OUT/fsdp_rc"
echo "FSDP rc $(cat "$OUT/fsdp_rc")"; tail -n 5 "$OUT/fsdp.log"
rm -rf "$OUT/lora/base" "$OUT/lora/adapter" "$OUT/fsdp-adapter"  # ~1 GB of random weights; the figures are kept
