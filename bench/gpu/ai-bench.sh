#!/bin/bash
# The AI latency bench (npm run bench:ai, bench/ai-bench.ts) on a CUDA machine: llama-server and
# llama-quantize built with CUDA by the project's toolchain (src/medgemma/build/build-llama.ts),
# the random-weight MedGemma 4B-shaped model generated once into models/, every layer and the
# projector on the GPU. By default a generated 300-slice CT (the issue's goal: study received →
# SR stored under 60 s on one H100-class GPU) with the MedGemma 1.5 recipe's 85 slices sent.
#
#   bash bench/gpu/ai-bench.sh            (from the repository root; needs Node.js 20, nvcc, a GPU)
#   BENCH_AI_CT_SLICES=0 bash bench/gpu/ai-bench.sh     the corpus 99-slice CT instead
# Other knobs pass through: BENCH_AI_SLICES, BENCH_AI_DECODE_TOKENS, LLAMA_CUDA_ARCH (default 90).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "bench/gpu/ai-bench.sh: no NVIDIA GPU visible (nvidia-smi -L failed); run npm run bench:ai for the CPU figures" >&2
  exit 3
fi
nvidia-smi -L
if ! command -v node >/dev/null 2>&1; then
  echo "bench/gpu/ai-bench.sh: Node.js not found; the bench drives the real pipeline and needs Node.js 20" >&2
  exit 4
fi
export LLAMA_CUDA=on BENCH_AI_DEVICE=cuda
export BENCH_AI_CT_SLICES="${BENCH_AI_CT_SLICES:-300}"
export BENCH_AI_SLICES="${BENCH_AI_SLICES:-85}"
npx tsc -p .
node dist/bench/bench.js ai
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv
