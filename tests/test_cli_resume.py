"""Resume never loses data; evaluate reports a saved run; train prints JSON when asked."""

from __future__ import annotations

import gzip
import hashlib
import json
import struct

import numpy as np
import pandas as pd
import pytest

from niti_hw.cli import main
from niti_hw.data import load_dataset
from niti_hw.train import TrainConfig, Trainer, load_checkpoint
from niti_hw.train.report import plot_curves
from niti_hw.train.resume import merge_schedule

SMALL = ["--limit-train", "128", "--limit-test", "64", "--quiet"]


def snapshot(folder):
    """Every file under `folder` with its bytes' hash and modification time."""
    return {path.relative_to(folder): (hashlib.sha256(path.read_bytes()).hexdigest(),
                                       path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*")) if path.is_file()}


def run_cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def three_epochs(tmp_path_factory):
    """OLD: a 3-epoch run, with a copy of its checkpoint after epoch 1 beside it."""
    old = tmp_path_factory.mktemp("old")
    assert main(["train", *SMALL, "--epochs", "1", "--out", str(old)]) == 0
    (old / "epoch1-backup.npz").write_bytes((old / "checkpoint.npz").read_bytes())
    assert main(["train", "--resume", str(old / "checkpoint.npz"), "--epochs", "3",
                 "--quiet"]) == 0
    return old


def test_resume_into_a_new_folder_never_writes_the_source(three_epochs, tmp_path, capsys):
    before = snapshot(three_epochs)
    new = tmp_path / "new"
    code, _, err = run_cli(["train", "--resume", str(three_epochs / "epoch1-backup.npz"),
                            "--epochs", "2", "--out", str(new), "--quiet"], capsys)
    assert code == 0, err
    assert snapshot(three_epochs) == before
    metrics = pd.read_csv(new / "metrics.csv")
    assert metrics.epoch.tolist() == [0, 1]
    old_metrics = pd.read_csv(three_epochs / "metrics.csv")
    assert metrics.iloc[0].equals(old_metrics.iloc[0])  # epoch 0 carried over, same values
    assert metrics.iloc[1].test_accuracy == old_metrics.iloc[1].test_accuracy  # bit for bit
    meta, _ = load_checkpoint(new / "checkpoint.npz")
    assert meta["epoch"] == 2
    settings = json.loads((new / "config.json").read_text())
    assert settings["resumes"][-1]["at_epoch"] == 1
    assert settings["resumes"] == [{"from": str(three_epochs / "epoch1-backup.npz"),
                                   "at_epoch": 1, "changed": {"epochs": [1, 2]}}]


def test_resume_into_a_folder_with_a_newer_checkpoint_is_refused(three_epochs, capsys):
    before = snapshot(three_epochs)
    code, out, err = run_cli(["train", "--resume", str(three_epochs / "epoch1-backup.npz"),
                              "--epochs", "2", "--quiet"], capsys)
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "holds 3 epoch(s), more than the 1 of" in err and "nothing was changed" in err
    assert snapshot(three_epochs) == before


def test_conflicting_flags_are_listed_and_refused(three_epochs, tmp_path, capsys):
    before = snapshot(three_epochs)
    code, out, err = run_cli(["train", "--resume", str(three_epochs / "checkpoint.npz"),
                              "--epochs", "4", "--dataset", "fashion-mnist", "--acc-bits", "12",
                              "--batch-size", "32", "--activation-mode", "nearest",
                              "--model", "vgg11", "--backend", "sim", "--baseline", "fp32",
                              "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    for difference in ("--model vgg11 (checkpoint: lenet5)",
                       "--dataset fashion-mnist (checkpoint: mnist)",
                       "--batch-size 32 (checkpoint: 64)",
                       "--activation-mode nearest (checkpoint: pseudo)",
                       "--acc-bits 12 (checkpoint: 8)", "--backend sim (checkpoint: golden)",
                       "--baseline fp32 (checkpoint: no fp32 twin)"):
        assert difference in err
    assert "--epochs" not in err.split("settings:")[1].split(".")[0]
    assert snapshot(three_epochs) == before and not (tmp_path / "x").exists()


def test_flags_equal_to_the_checkpoint_are_accepted(three_epochs, tmp_path, capsys):
    code, _, err = run_cli(["train", "--resume", str(three_epochs / "checkpoint.npz"),
                            "--epochs", "4", "--dataset", "mnist", "--model", "lenet5",
                            "--batch-size", "64", "--backend", "golden", "--mu-schedule", "0:2",
                            "--gemm-engine", "blas", *SMALL, "--out", str(tmp_path)], capsys)
    assert code == 0, err
    settings = json.loads((tmp_path / "config.json").read_text())
    assert settings["epochs"] == 4 and settings["gemm_engine"] == "blas"
    # m_u 2 from the resumed epoch on; the epochs done keep the schedule they used
    assert settings["mu_schedule"] == [[0, 5], [2, 4], [3, 2]]
    change = settings["resumes"][-1]
    assert change["at_epoch"] == 3 and change["changed"]["mu_schedule"] == ["0:5,2:4,5:3,8:2",
                                                                              "0:5,2:4,3:2"]
    assert pd.read_csv(tmp_path / "metrics.csv").m_u.tolist() == [5, 5, 4, 2]


def test_nothing_to_do_is_one_line_and_changes_nothing(three_epochs, capsys):
    before = snapshot(three_epochs)
    for epochs in (["--epochs", "3"], ["--epochs", "2"], []):
        code, out, err = run_cli(["train", "--resume", str(three_epochs / "checkpoint.npz"),
                                  *epochs, "--quiet"], capsys)
        assert code == 0 and err == "" and len(out.splitlines()) == 1
        assert out.startswith("nothing to do: ") and "already holds 3 epoch(s)" in out
    assert snapshot(three_epochs) == before


def test_merge_schedule_keeps_the_past():
    assert merge_schedule(((0, 5), (2, 4)), ((0, 3),), 1) == ((0, 5), (1, 3))
    assert merge_schedule(((0, 5), (2, 4)), ((0, 5), (4, 2)), 3) == ((0, 5), (2, 4), (3, 5),
                                                                      (4, 2))
    assert merge_schedule(((0, 5),), ((0, 5),), 2) == ((0, 5),)


def test_evaluate_reproduces_the_recorded_accuracy(three_epochs, capsys):
    code, out, err = run_cli(["evaluate", str(three_epochs / "checkpoint.npz"), "--limit-test",
                              "64", "--format", "json"], capsys)
    assert code == 0, err
    [row] = json.loads(out)
    recorded = pd.read_csv(three_epochs / "metrics.csv").iloc[-1]
    assert row["run"] == "niti-int8" and row["epochs"] == 3 and row["test_images"] == 64
    assert row["test_accuracy"] == recorded.test_accuracy
    assert row["test_loss"] == pytest.approx(recorded.test_loss, rel=1e-12)
    code, out, _ = run_cli(["evaluate", str(three_epochs / "checkpoint.npz"), "--limit-test",
                            "64", "--gemm-engine", "blas"], capsys)
    assert code == 0 and "niti-int8" in out and "test_pct" in out


def write_idx_dir(root, shape, n=16, seed=0):
    """The four IDX files of a random dataset of uint8 images shaped `shape`."""
    rng = np.random.default_rng(seed)
    root.mkdir()
    names = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    for images_name, labels_name in names.values():
        for name, array in ((images_name, rng.integers(0, 256, (n, *shape), dtype=np.uint8)),
                            (labels_name, rng.integers(0, 10, n, dtype=np.uint8))):
            header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            (root / f"{name}.gz").write_bytes(gzip.compress(header + array.tobytes()))
    return root


def test_evaluate_on_another_dataset_and_a_misfit_one(three_epochs, tmp_path, capsys):
    same = write_idx_dir(tmp_path / "same", (28, 28))
    code, out, err = run_cli(["evaluate", str(three_epochs / "checkpoint.npz"), "--dataset",
                              "idx", "--data-root", str(same), "--format", "json"], capsys)
    assert code == 0, err
    [row] = json.loads(out)
    assert row["dataset"] == "idx" and row["test_images"] == 16
    other = write_idx_dir(tmp_path / "other", (20, 20))
    code, out, err = run_cli(["evaluate", str(three_epochs / "checkpoint.npz"), "--dataset",
                              "idx", "--data-root", str(other)], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "holds a lenet5 network for 28x28x1 images in 10 classes; idx has 20x20x1" in err


def test_train_json_output_and_fp32_rows_have_no_m_u(tmp_path, capsys):
    pytest.importorskip("torch", reason="the fp32 twin needs the torch extra")
    code, out, err = run_cli(["train", *SMALL, "--baseline", "fp32", "--format", "json",
                              "--out", str(tmp_path)], capsys)
    assert code == 0, err
    document = json.loads(out)
    assert [row["run"] for row in document["summary"]] == ["niti-int8", "fp32"]
    assert [row["m_u"] for row in document["metrics"]] == [5, None]
    assert document["files"]["checkpoint.npz"] == str(tmp_path / "checkpoint.npz")
    metrics = pd.read_csv(tmp_path / "metrics.csv", dtype={"m_u": "Int64"})
    assert metrics.m_u.isna().tolist() == [False, True]


def test_curves_of_a_one_epoch_run_have_whole_epoch_ticks(tmp_path):
    metrics = pd.DataFrame([{"run": "niti-int8", "epoch": 0, "test_accuracy": 0.9,
                             "train_loss": 0.3}])
    figure = plot_curves(metrics, tmp_path / "curves.png")
    for axis in figure.axes:
        assert axis.get_xlim() == (0.5, 1.5)
        assert [tick for tick in axis.get_xticks() if 0.5 <= tick <= 1.5] == [1.0]


def test_old_checkpoints_without_new_fields_resume_as_golden(tmp_path):
    data = load_dataset("mnist", limit_train=64, limit_test=32)
    Trainer(TrainConfig(epochs=1), tmp_path / "a", progress=False, data=data).fit()
    meta, arrays = load_checkpoint(tmp_path / "a" / "checkpoint.npz")
    for key in ("backend", "device", "gemm_engine"):
        del meta["config"][key]
    for key in ("metrics", "resumes", "input_shape", "classes"):
        del meta[key]
    from niti_hw.train.checkpoint import save_checkpoint
    meta.pop("format")
    save_checkpoint(tmp_path / "a" / "checkpoint.npz", meta, arrays)
    resumed = Trainer.resume(tmp_path / "a" / "checkpoint.npz", epochs=2, progress=False,
                             data=data)
    assert resumed.config.backend == "golden" and resumed.metrics.epoch.tolist() == [0]
