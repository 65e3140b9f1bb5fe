#!/usr/bin/env bash
# The GPU measurements of one lent machine, in one call (docs/results.md, "On a GPU").
#
# The machine has torch with CUDA but no spconv and no network. Prepare here, in an ignored
# folder that travels with the call (.whl/ is in .git/info/exclude):
#   .whl/site_gpu.tar.xz   spconv-cu126 2.3.8, cumm-cu126, pccm, ccimport, fire, termcolor and
#                          omegaconf unpacked into one site folder, xz-compressed (the spconv
#                          wheel alone is 70 MB, over the call's 64 MiB; xz makes the whole 42 MB)
#   .whl/extra/lark        lark (pure Python; pccm needs it)
#   .whl/shared/data/      a copy of ../shared/data (the real SemanticKITTI frames)
# then run `bash benchmarks/gpu_session.sh` there; results land in $OUT (or /tmp/gpu_out).
set -u
OUT=${OUT:-/tmp/gpu_out}
mkdir -p /tmp/site "$OUT"
tar -xJf .whl/site_gpu.tar.xz -C /tmp/site || exit 1
export PYTHONPATH=/tmp/site:$PWD/.whl/extra:$PWD/src:${PYTHONPATH:-} PYTHONUNBUFFERED=1 ZEROSEG3D_SHARED=$PWD/.whl/shared
nvidia-smi -L
python3 -c "import torch, spconv, numpy; print('torch', torch.__version__, 'spconv', spconv.__version__, 'numpy', numpy.__version__)" || exit 1
timeout 170 python3 benchmarks/bench_gpu.py --repeat 5 --profile-out "$OUT" ${GPU_ARGS:-} 2>&1 | tee "$OUT/bench_gpu.log"
cp benchmarks/results/gpu_student.json "$OUT/" 2>/dev/null
timeout 230 python3 benchmarks/bench_peer.py --precision bf16 fp16 --rounds 1 --repeat 3 --workers 0 16 ${PEER_ARGS:-} 2>&1 \
    | tee "$OUT/bench_peer.log"
cp benchmarks/results/peer_gpu.json "$OUT/" 2>/dev/null
ls "$OUT"
