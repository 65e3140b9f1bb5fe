#!/usr/bin/env bash
# Builds .whl/, what benchmarks/gpu_session.sh needs on a lent GPU machine (no network there):
# spconv's CUDA build and its pure-Python needs, safetensors (the teacher cache), pytest and the
# real frames. Run here, where pip reaches the package index:   bash benchmarks/gpu_prepare.sh
# (about 2 minutes; 48 MB)
# The spconv-cu126 wheel alone is 70 MB, over a call's 64 MiB, so its files travel as one
# xz-compressed site folder (42 MB with cumm).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl
mkdir -p .whl/extra .whl/shared
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the machine's python3 is 3.12 on x86-64
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$tmp/wheels" spconv-cu126==2.3.8 "cumm-cu126>=0.7.11,<0.8" pccm ccimport fire termcolor \
    "$(grep -i '^safetensors==' requirements/lock.txt)" \
    > "$tmp/pip.log" 2>&1 || { grep -v "^WARNING: Location" "$tmp/pip.log"; echo "gpu_prepare: pip download failed" >&2; exit 1; }
mkdir "$tmp/site"
for wheel in "$tmp"/wheels/*.whl; do unzip -q -o "$wheel" -d "$tmp/site"; done
site=$($PY -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
# pytest for tests/test_cuda.py, pure Python, from this environment (15 MB, compressed with the rest)
cp -r "$site/pytest" "$site/_pytest" "$site/pluggy" "$site/iniconfig" "$site/py.py" "$site/packaging" \
    "$site/pygments" "$tmp/site/"
tar -C "$tmp/site" -cf - . | xz -T0 -8 > .whl/site_gpu.tar.xz
# pure Python, any version: from this environment
cp -r "$site/lark" "$site/omegaconf" .whl/extra/
cp -r "${ZEROSEG3D_SHARED:-../shared}/data" .whl/shared/
du -sh .whl
