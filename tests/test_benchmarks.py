"""The benchmark scripts run and print their tables (smoke tests on tiny sizes, no timing asserts)."""

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

SW = Path(__file__).resolve().parent.parent / "sw"


def load(name):
    spec = importlib.util.spec_from_file_location(name, SW / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_golden_prints_engines_and_ratios(capsys):
    pytest.importorskip("torch", reason="the benchmark compares against torch")
    table = load("bench_golden").main(["--sizes", "32", "--repeat", "1"])
    engines = set(table.engine)
    assert {"golden int8_matmul (float64 BLAS)", "numpy int32 matmul", "torch fp32 matmul",
            "golden int8_matmul (torch._int_mm)", "golden with numpy int32 GEMM"} <= engines
    assert (table.seconds > 0).all() and (table["x vs golden"] > 0).all()
    assert "GEMM 32x32x32" in capsys.readouterr().out


def test_bench_train_reports_int8_over_fp32():
    pytest.importorskip("torch", reason="the benchmark compares against torch")
    table = load("bench_train").main(["--models", "lenet5", "--batches", "1",
                                      "--batch-size", "8", "--threads", "1"])
    assert list(table.run) == ["niti-int8", "fp32"]
    assert table.loc[table.run == "fp32", "int8 / fp32"].item() == 1.0


def test_accuracy_summary_reads_recorded_runs(tmp_path):
    rows = [("niti-int8", 0, 0.98), ("fp32", 0, 0.97), ("niti-int8", 1, 0.99), ("fp32", 1, 0.985)]
    metrics = pd.DataFrame([{"run": r, "epoch": e, "test_accuracy": a, "train_loss": 0.1,
                             "images_per_s": 100.0} for r, e, a in rows])
    (tmp_path / "mnist").mkdir()
    metrics.to_csv(tmp_path / "mnist" / "metrics.csv", index=False)
    result = load("accuracy").summarise(tmp_path)
    gap = result.set_index("run").loc["niti-int8", "best_gap_vs_fp32_pct"]
    assert gap == pytest.approx(0.5)
    assert (tmp_path / "accuracy.csv").exists()
