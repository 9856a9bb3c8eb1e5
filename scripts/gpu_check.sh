#!/usr/bin/env bash
# The GPU check (issue 4): the inference and end-to-end benchmarks on a CUDA host, as one prepared script.
#
#   scripts/gpu_check.sh prepare   # here, with the package index at hand: fills .gpu/ (git-ignored)
#   scripts/gpu_check.sh run       # there, from the repository root; OUT=folder for the logs (default /tmp/gpu-check)
#                                  # (PY, DEVICE, N_INFER, N_BATCH override python3, cuda, 20000, 200000: a dry run on CPU)
#   scripts/gpu_check.sh restore   # here, afterwards: puts back what `prepare` set aside
#
# The GPU host this project is lent (docs/gpu.md) reaches no network and already has Python 3.12 with a CUDA
# build of torch, transformers, tokenizers, safetensors, numpy, pyarrow, typer and rich; what it lacks travels
# in .gpu/: the ingestors' pure-Python dependencies as wheels, and the base encoder's config and tokenizer
# files (the shipped model saves every encoder weight it uses, so the 90 MB base weights are not needed).
# Only 64 MiB of working tree travels, so `prepare` moves the SECI training data (not used here) into the
# ignored .gpu-aside/ until `restore`.
set -euo pipefail
cd "$(dirname "$0")/.."

GPU_DIR=.gpu
ASIDE=.gpu-aside
MODEL=models/seci-fast
# The ingestors' dependencies missing from the GPU image, at requirements.lock's versions.
WHEELS=(webvtt-py pysrt mail-parser-reply beautifulsoup4 soupsieve pypdf python-docx)
BASE_FILES=(config.json tokenizer.json tokenizer_config.json special_tokens_map.json vocab.txt)
BIG_DATA=(data/seci/pool.jsonl data/seci/train.jsonl data/seci/dev.jsonl)

prepare() {
  local py=.venv/bin/python
  rm -rf "$GPU_DIR" && mkdir -p "$GPU_DIR/whl" "$GPU_DIR/base"
  local base
  base=$("$py" -c 'from pipeline.classify.model import resolve_base; print(resolve_base("fast"))')
  for f in "${BASE_FILES[@]}"; do cp "$base/$f" "$GPU_DIR/base/"; done
  local pins=()
  for w in "${WHEELS[@]}"; do
    pins+=("$(grep -i -E "^${w}==" requirements.lock)")
  done
  # All pure Python, so wheels built here (pysrt ships only an sdist) install on the host's Python 3.12.
  "$py" -m pip wheel -q --no-deps -w "$GPU_DIR/whl" "${pins[@]}"
  mkdir -p "$ASIDE/data/seci"
  for f in "${BIG_DATA[@]}"; do
    if [ -f "$f" ]; then mv "$f" "$ASIDE/$f"; fi
  done
  # What travels: tracked and untracked-not-ignored files that exist, plus the carried .gpu/.
  local bytes
  bytes=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null |
    awk '$2 == "total" {s += $1} END {print s + 0}') || true  # du fails on the files set aside
  bytes=$((bytes + $(du -sb "$GPU_DIR" | cut -f1)))
  echo "prepared $GPU_DIR ($(ls "$GPU_DIR/whl" | wc -l) wheels); about $((bytes / 1048576)) MiB would travel (limit 64)"
  echo "now: device run(command='bash scripts/gpu_check.sh run', carry=['$GPU_DIR'], timeout_s=540), then restore"
}

restore() {
  for f in "${BIG_DATA[@]}"; do
    if [ -f "$ASIDE/$f" ]; then mv "$ASIDE/$f" "$f"; fi
  done
  rm -rf "$ASIDE"
  git status --short -- data/seci
}

run() {
  local out=${OUT:-/tmp/gpu-check} py=${PY:-python3} device=${DEVICE:-cuda}
  local n_infer=${N_INFER:-20000} n_batch=${N_BATCH:-200000}
  mkdir -p "$out"
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$GPU_DIR"/whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
  nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
  "$py" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__,
    torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device")' | tee "$out/versions.txt"
  # The shipped model, pointed at the base files that travelled (its own config names the PyPI preset).
  rm -rf /tmp/seci-fast && cp -r "$MODEL" /tmp/seci-fast
  "$py" - "$PWD/$GPU_DIR/base" <<'EOF'
import json, sys
path = "/tmp/seci-fast/config.json"
config = json.load(open(path))
config["base"] = sys.argv[1]
json.dump(config, open(path, "w"), indent=2)
EOF
  set -o pipefail
  "$py" scripts/bench_inference.py --device "$device" --n "$n_infer" --resample --no-naive --no-int8 \
    --model /tmp/seci-fast 2>&1 | tee "$out/bench_inference.txt"
  # Each CPU stage alone on one of this host's cores, local and --engine ray (Ray itself is not needed):
  # what the host's cores can feed the GPU.
  "$py" scripts/bench_batch.py --n 20000 --device cpu --metaphor tokens --stages --model /tmp/seci-fast 2>&1 \
    | tee "$out/stages.txt"
  # Chunks of 4096 items: at ~20,000 items/s the default 1024 would write (and fsync) 20 part files a second.
  local batch=(scripts/bench_batch.py --n "$n_batch" --sample "$n_infer" --chunk-size 4096 --device "$device" --metaphor tokens
    --model /tmp/seci-fast)
  "$py" "${batch[@]}" 2>&1 | tee "$out/bench_batch.txt"
  "$py" "${batch[@]}" --compile 2>&1 | tee "$out/bench_batch_compile.txt"
}

case "${1:-}" in
  prepare) prepare ;;
  restore) restore ;;
  run) run ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac
