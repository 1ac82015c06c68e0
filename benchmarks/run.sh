#!/usr/bin/env bash
# polydiff vs diffusers, side by side:   ./dev bench [--quick]
# Installs the `bench` extra (diffusers, matplotlib) into .venv when missing, then runs
#   1a accuracy.py     sampler error vs NFE on an exact Gaussian-mixture denoiser (+ accuracy.png)
#      sampler_suite.py the same at 2-256 dimensions, two discrete schedules, the image and audio UNets
#   1b overhead.py     per-step wall time of the sampling loop around a near-free denoiser
#   1c end_to_end.py   the image plugin's UNet: time per image, peak memory, error at equal NFE
#      oracle_errors.py every registered sampler x spacing on the oracle (polydiff only)
#      cli_latency.py   whole `polydiff generate` commands (image, audio), start-up included
#      serve.py         `polydiff serve`: warm latency, throughput, a load test with a kill and restart
#      diffusers_adapter.py  the diffusers backend on a tiny SD-shaped folder vs StableDiffusionPipeline
#      gan_vs_diffusion.py   GAN, DDGAN and diffusion on 25 Gaussians: modes, quality, speed, stability
#      few_step.py           the distilled 4-step image and audio students vs their 20-step teachers
# and writes benchmarks/results/*.md, *.png and README.md (all tables in one page).
# --quick: small sizes, a smoke test of the whole pipeline (results in out/bench-quick/).
# On a machine with CUDA, 1b and 1c also run on the GPU (tables *_cuda.md).
# BENCH_THREADS=N limits torch's CPU threads in the timings (default: torch's choice).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
[ -x "$PY" ] || ./dev setup
if ! "$PY" -c "import diffusers, matplotlib" 2>/dev/null; then
  echo "installing the bench extra (diffusers, matplotlib) into $VENV ..." >&2
  "$PY" -m pip install -q -c constraints.txt -e ".[bench]"
fi

OUT=benchmarks/results
THREADS=()
if [ -n "${BENCH_THREADS:-}" ]; then export OMP_NUM_THREADS=$BENCH_THREADS; THREADS=(--threads "$BENCH_THREADS"); fi
if [ "${1:-}" = "--quick" ]; then
  OUT=out/bench-quick
  mkdir -p "$OUT"
  "$PY" benchmarks/accuracy.py --quick --out "$OUT"
  "$PY" benchmarks/sampler_suite.py --quick --out "$OUT"
  "$PY" benchmarks/overhead.py --repeats 3 ${THREADS[@]+"${THREADS[@]}"} --out "$OUT"
  "$PY" benchmarks/end_to_end.py --batch 2 --nfe 10 --repeats 1 --device cpu --out "$OUT"
  "$PY" benchmarks/cli_latency.py --repeats 1 --out "$OUT"
  "$PY" benchmarks/serve.py --quick --out "$OUT"
  "$PY" benchmarks/diffusers_adapter.py --repeats 2 --out "$OUT"
  "$PY" benchmarks/gan_vs_diffusion.py --seeds 1 --steps 300 --out "$OUT"
  "$PY" benchmarks/few_step.py --image-prompts 4 --audio-prompts 4 --repeats 2 --out "$OUT"
else
  "$PY" benchmarks/accuracy.py --out "$OUT"
  "$PY" benchmarks/sampler_suite.py --out "$OUT"
  "$PY" benchmarks/overhead.py --device cpu ${THREADS[@]+"${THREADS[@]}"} --out "$OUT"
  "$PY" benchmarks/end_to_end.py --device cpu --out "$OUT"
  if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    "$PY" benchmarks/overhead.py --device cuda --out "$OUT"
    "$PY" benchmarks/end_to_end.py --device cuda --out "$OUT"
  fi
  "$PY" benchmarks/oracle_errors.py --out "$OUT/oracle_errors.md"
  "$PY" benchmarks/cli_latency.py --out "$OUT"
  "$PY" benchmarks/serve.py --out "$OUT"
  "$PY" benchmarks/diffusers_adapter.py --out "$OUT"
  "$PY" benchmarks/gan_vs_diffusion.py --out "$OUT"
  "$PY" benchmarks/few_step.py --out "$OUT"
fi
"$PY" benchmarks/report.py "$OUT"
