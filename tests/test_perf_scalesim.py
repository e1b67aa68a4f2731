"""SCALE-Sim itself on a few small shapes, when `.venv-scalesim` exists (sw/setup.sh makes it with
NITI_HW_SCALESIM=1); the recorded known answers in test_perf_timing.py run everywhere."""

import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest

from niti_hw.params import HardwareParams
from niti_hw.perf.lowering import gemm_op

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv-scalesim" / "bin" / "python"

pytestmark = pytest.mark.skipif(
    not PYTHON.exists(), reason="no .venv-scalesim: run NITI_HW_SCALESIM=1 sw/setup.sh to compare "
                                "against SCALE-Sim itself (recorded answers run regardless)")


def compare_module():
    spec = importlib.util.spec_from_file_location("compare_scalesim",
                                                  REPO / "sw" / "compare_scalesim.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_model_equals_scalesim_on_small_gemms(tmp_path, dataflow):
    """Cycles and the six access counts; 1 KiB SRAMs (500-word chunks), so the last two GEMMs
    overflow them and the ofmap SRAM's half (512 words, whole 4-wide lines)."""
    compare = compare_module()
    params = compare.with_srams(
        HardwareParams(rows=3, cols=4, lanes=1, dataflow=compare.DATAFLOWS[dataflow]), 1)
    shapes = [(1, 1, 1), (5, 9, 2), (13, 6, 11), (40, 30, 50), (21, 43, 27)]
    ops = [replace(gemm_op(m, n, k)[0], layer=f"g{i}") for i, (m, n, k) in enumerate(shapes)]
    sim = compare.run_scalesim(str(PYTHON), tmp_path, params, dataflow, "gemm",
                               [(op.layer, (op.m, op.n, op.k)) for op in ops])
    ours, _ = compare.model_time(ops, params, repeat=1)
    assert ours == sim["cycles"]
    rows = [compare.byte_row(params, "test", op.layer, op.m, op.n, op.k, op.m * op.k, access)
            for op, access in zip(ops, sim["access"])]
    assert [row["equal"] for row in rows] == [True] * len(ops), rows
