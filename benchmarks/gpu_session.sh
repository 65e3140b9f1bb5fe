#!/usr/bin/env bash
# The GPU measurements of one lent machine, in one call (docs/results.md, "On a GPU").
#
# The machine has torch with CUDA but no spconv and no network: `bash benchmarks/gpu_prepare.sh`
# here first builds .whl/ (spconv-cu126 as a compressed site folder, lark and omegaconf, the real
# frames). Then, through the device tool, with .whl carried:
#   bash benchmarks/gpu_session.sh      (GPU_ARGS / PEER_ARGS add arguments to the two benchmarks)
# Results land in $OUT (or /tmp/gpu_out).
set -u
OUT=${OUT:-/tmp/gpu_out}
mkdir -p /tmp/site "$OUT"
tar -xJf .whl/site_gpu.tar.xz -C /tmp/site || exit 1
export PYTHONPATH=/tmp/site:$PWD/.whl/extra:$PWD/src:${PYTHONPATH:-} PYTHONUNBUFFERED=1 ZEROSEG3D_SHARED=$PWD/.whl/shared
nvidia-smi -L
python3 -c "import torch, spconv, numpy; print('torch', torch.__version__, 'spconv', spconv.__version__, 'numpy', numpy.__version__)" || exit 1
# the step's own work on the GPU: a batch finished there is the CPU's, a student's step runs on it
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -15 | tee "$OUT/test_cuda.log"
timeout 170 python3 benchmarks/bench_gpu.py --repeat 5 --profile-out "$OUT" ${GPU_ARGS:-} 2>&1 | tee "$OUT/bench_gpu.log"
cp benchmarks/results/gpu_student.json "$OUT/" 2>/dev/null
# what one training sample costs on this machine's CPU, one thread (the loader's workers)
timeout 60 python3 benchmarks/bench_loader.py --scan-only 2>&1 | tee "$OUT/loader_scan.log"
timeout 230 python3 benchmarks/bench_peer.py --precision bf16 fp16 --rounds 1 --repeat 3 --workers 0 16 ${PEER_ARGS:-} 2>&1 \
    | tee "$OUT/bench_peer.log"
cp benchmarks/results/peer_gpu.json "$OUT/" 2>/dev/null
ls "$OUT"
