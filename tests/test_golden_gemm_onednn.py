"""oneDNN's u8 x s8 kernel as the torch engine's CPU GEMM: bit-exact against int64 numpy, at the
int16 pair-sum extremes and across K chunks, and chosen only where it applies."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from niti_hw.golden.gemm import (
    FLOAT32_EXACT_K, ONEDNN_MIN_COLS, ONEDNN_MIN_ROWS, ONEDNN_U8_MAX, onednn_pays,
    onednn_u8s8_is_exact, tensor_matmul,
)

torch = pytest.importorskip("torch", reason="the oneDNN kernel is torch's")
needs_onednn = pytest.mark.skipif(not onednn_u8s8_is_exact(),
                                  reason="torch has no exact oneDNN u8 x s8 kernel on this CPU")


def cpu_has(flag: str) -> bool:
    try:
        return any(line.startswith("flags") and flag in line.split()
                   for line in Path("/proc/cpuinfo").read_text().splitlines())
    except OSError:
        return False


def exact(a: np.ndarray, b: np.ndarray, kernel: str = "onednn") -> bool:
    got = tensor_matmul(torch.from_numpy(a), torch.from_numpy(b), kernel)
    return got.dtype == torch.int32 and np.array_equal(
        got.numpy().astype(np.int64), a.astype(np.int64) @ b.astype(np.int64))


@needs_onednn
@given(st.integers(1, 40), st.integers(1, 2 * FLOAT32_EXACT_K + 300), st.integers(1, 40),
       st.sampled_from(["random", "extreme"]), st.integers(0, 2**32 - 1))
@settings(max_examples=30, deadline=None)
def test_matches_int64_matmul_exactly(m, k, n, kind, seed):
    """Random operands, or extreme ones: every u8 127 and every s8 +-127, so int16 pair sums reach
    +-2 * 127**2 and chunks of 1024 reach 1024 * 127**2 (the float32 output's exact limit)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, ONEDNN_U8_MAX + 1, (m, k), dtype=np.int8)
    b = rng.integers(-127, 128, (k, n), dtype=np.int8)
    if kind == "extreme":
        a[:] = ONEDNN_U8_MAX
        b = np.where(rng.integers(0, 2, (1, n)) == 1, 127, -127).astype(np.int8).repeat(k, 0)
    assert exact(a, b)


@needs_onednn
@pytest.mark.parametrize("k", [FLOAT32_EXACT_K, FLOAT32_EXACT_K + 1, 5000])
def test_exact_where_one_float32_output_would_round(k):
    """K * 127**2 beyond 2**24 (odd sums float32 cannot hold): exact only because K is chunked."""
    a = np.full((3, k), 127, dtype=np.int8)
    a[1, ::3] = 1
    b = np.full((k, 5), -127, dtype=np.int8)
    b[:, 1] = 127
    b[1::2, 2] = 1
    assert exact(a, b)


@needs_onednn
def test_auto_takes_onednn_for_large_non_negative_left_operands_only():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 128, (ONEDNN_MIN_ROWS, 300), dtype=np.int8)
    b = rng.integers(-127, 128, (300, ONEDNN_MIN_COLS), dtype=np.int8)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    assert onednn_pays(ta, tb) and exact(a, b, "auto")
    a[-1, -1] = -1  # one negative value: the float32 carrier, still exact
    assert not onednn_pays(torch.from_numpy(a), tb) and exact(a, b, "auto")
    assert not onednn_pays(ta[:64], tb)  # too few rows: packing B would cost more than it saves


def test_negative_left_operand_is_refused_with_a_clear_error():
    a = torch.tensor([[1, -2]], dtype=torch.int8)
    with pytest.raises(ValueError, match="non-negative left operand"):
        tensor_matmul(a, a.t(), "onednn")



AVX2_PROBE = """
import json, numpy as np, torch
from niti_hw.golden.gemm import _onednn_u8s8_chunk, onednn_u8s8_is_exact
a = np.full((8, 64), 127 + 128, dtype=np.uint8)  # signed extremes offset by 128
b = np.full((64, 2), 127, dtype=np.int8)
b[:, 1] = -127
got = _onednn_u8s8_chunk(torch.from_numpy(a), torch.from_numpy(b.T.copy()))
print(json.dumps({"spec_values_exact": onednn_u8s8_is_exact(), "offset": got[0].tolist()}))
"""


@needs_onednn
@pytest.mark.skipif(not cpu_has("avx2"), reason="needs an x86 CPU with AVX2 (Linux)")
def test_avx2_kernel_saturates_offset_operands_but_not_spec_values():
    """ONEDNN_U8_MAX's claim, on oneDNN's AVX2 kernel (forced: VNNI CPUs add u8 x s8 products
    in int32 and are exact either way). Signed values offset by 128 into u8: each pair 255 * 127
    * 2 = 64770 saturates to 32767 (-32768), so 64 terms give 32 * 32767 instead of 64 * 255 *
    127 = 2072640. SPEC's non-negative values (<= 127) stay exact there: the probe holds."""
    root = Path(__file__).resolve().parents[1]
    path = filter(None, [str(root), os.environ.get("PYTHONPATH")])
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "PYTHONPATH": os.pathsep.join(path)}
    run = subprocess.run([sys.executable, "-c", AVX2_PROBE], env=env, capture_output=True,
                         text=True, timeout=300, cwd=root)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["spec_values_exact"]
    assert result["offset"] == [32 * 32767, 32 * -32768]
