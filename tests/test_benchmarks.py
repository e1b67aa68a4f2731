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
            "golden int8_matmul (torch engine)", "golden with numpy int32 GEMM"} <= engines
    assert (table.seconds > 0).all() and (table["x vs golden"] > 0).all()
    assert "GEMM 32x32x32" in capsys.readouterr().out


def test_bench_train_reports_int8_over_fp32():
    pytest.importorskip("torch", reason="the benchmark compares against torch")
    table = load("bench_train").main(["--models", "lenet5", "--batches", "1",
                                      "--batch-size", "8", "--threads", "1"])
    niti = table[~table.run.str.startswith("accelerator")]
    assert list(niti.run) == ["niti int8 golden (cpu)", "niti int8 torch (cpu)", "fp32 (cpu)"]
    assert (niti.threads == 1).all() and (niti.images_per_s > 0).all()
    assert table.loc[table.run == "fp32 (cpu)", "x fp32"].item() == 1.0


def test_bench_command_writes_tables_and_plot(tmp_path, capsys):
    pytest.importorskip("torch", reason="niti-hw bench measures torch")
    from niti_hw.cli import main

    out = tmp_path / "bench"
    assert main(["bench", "--sizes", "16", "32", "--models", "lenet5", "--batch-size", "4",
                 "--batches", "1", "--threads", "1", "--out", str(out)]) == 0
    gemm = pd.read_csv(out / "bench_gemm.csv")
    assert {"int8 exact (torch backend's engine)", "int8 torch._int_mm", "fp32 matmul",
            "bf16 matmul"} == set(gemm.kind)
    assert sorted(set(gemm.n)) == [16, 32] and (gemm.tops > 0).all()
    train = pd.read_csv(out / "bench_train.csv")
    assert {"niti int8 golden (cpu)", "niti int8 torch (cpu)", "fp32 (cpu)",
            "bf16 autocast (cpu)"} <= set(train.run)
    assert (out / "bench.png").stat().st_size > 0
    assert "bench_train.csv" in capsys.readouterr().out


def test_bench_on_cuda_without_a_gpu_says_so_in_one_line(tmp_path, capsys):
    torch = pytest.importorskip("torch", reason="niti-hw bench measures torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    from niti_hw.cli import main

    assert main(["bench", "--device", "cuda", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no CUDA GPU is visible to PyTorch" in err[0]
    assert not (tmp_path / "b").exists()


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


def test_bench_profile_splits_each_step_into_kinds_of_operation(tmp_path, capsys):
    pytest.importorskip("torch", reason="niti-hw bench measures torch")
    from niti_hw.cli import main
    from niti_hw.golden import numbers, tensor

    originals = (numbers.bitwidth, tensor.shift_round)
    out = tmp_path / "bench"
    assert main(["bench", "--profile", "--models", "lenet5", "--batch-size", "4",
                 "--batches", "1", "--modes", "nearest", "stochastic", "--out", str(out)]) == 0
    table = pd.read_csv(out / "bench_profile.csv")
    niti = table[table.run.str.startswith("niti")]
    assert set(niti.run) == {"niti int8 golden (cpu)", "niti int8 torch (cpu)"}
    for (run, mode), rows in niti.groupby(["run", "mode"]):
        ms = rows.set_index("category").ms_per_step
        parts = ms.drop("step")
        assert parts.sum() == pytest.approx(ms["step"], rel=1e-9)  # exclusive times add up
        assert (parts >= 0).all() and ms["gemm forward"] > 0 and ms["gemm gradient"] > 0
        assert ms["gemm error"] > 0 and ms["rounding"] > 0 and ms["im2col"] > 0
        assert (ms["lfsr draws"] > 0) == (mode == "stochastic")
    assert (numbers.bitwidth, tensor.shift_round) == originals  # the timers are gone again
    printed = capsys.readouterr().out
    assert "gemm gradient" in printed and "x fp32" in printed and "bench_profile.csv" in printed
