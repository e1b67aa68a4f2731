"""The training Backend seam: one protocol, a lazy registry, an explicit GEMM engine."""

from __future__ import annotations

import json

import numpy as np
import pytest

import niti_hw.golden.gemm as gemm
import niti_hw.train.backend as backend_module
from niti_hw.data import load_dataset
from niti_hw.train import TrainConfig, Trainer, load_checkpoint
from niti_hw.train.backend import Backend, backend_factory
from niti_hw.train.backend_names import BACKENDS
from niti_hw.train.integer_run import IntegerRun


@pytest.fixture(scope="module")
def tiny():
    return load_dataset("mnist", limit_train=96, limit_test=32)


class ReportingBackend(IntegerRun):
    """The golden backend plus a per-epoch report, as the sim backend writes one."""

    label = "reporting"

    def write_report(self, out_dir, epoch):
        (out_dir / f"report-{epoch}.txt").write_text(f"epoch {epoch}\n")


def test_golden_backend_implements_the_protocol(tiny, tmp_path):
    assert backend_factory("golden") is IntegerRun
    trainer = Trainer(TrainConfig(), tmp_path, progress=False, data=tiny)
    assert isinstance(trainer.runs[0], Backend) and trainer.runs[0].label == "niti-int8"
    assert set(BACKENDS) == {"golden", "sim", "torch", "program"}


def test_unknown_and_unavailable_backends_are_one_clear_line(monkeypatch):
    with pytest.raises(ValueError, match="unknown backend 'gpu'; valid backends: golden, sim, torch, program"):
        backend_factory("gpu")
    monkeypatch.setitem(BACKENDS, "sim", "niti_hw.train.no_such_backend:SimBackend")
    with pytest.raises(ValueError, match="^backend 'sim' is not available in this build$"):
        backend_factory("sim")

    def no_torch(name):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(backend_module.importlib, "import_module", no_torch)
    with pytest.raises(ValueError, match=r"^backend 'torch' needs the torch extra: "
                                         r"pip install 'niti-hw\[torch\]'$"):
        backend_factory("torch")


def test_a_registered_backend_trains_and_writes_its_report(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(BACKENDS, "reporting", f"{__name__}:ReportingBackend")
    config = TrainConfig(epochs=2, backend="reporting")
    metrics = Trainer(config, tmp_path, progress=False, data=tiny).fit()
    assert metrics.run.tolist() == ["reporting", "reporting"]
    assert [(tmp_path / f"report-{e}.txt").read_text() for e in (0, 1)] == ["epoch 0\n",
                                                                          "epoch 1\n"]
    meta, _ = load_checkpoint(tmp_path / "checkpoint.npz")
    assert meta["config"]["backend"] == "reporting"
    assert json.loads((tmp_path / "config.json").read_text())["backend"] == "reporting"


def test_resume_under_another_backend_is_refused(tiny, tmp_path):
    Trainer(TrainConfig(), tmp_path, progress=False, data=tiny).fit()
    with pytest.raises(ValueError, match=r"--backend sim \(checkpoint: golden\)"):
        Trainer.resume(tmp_path / "checkpoint.npz", epochs=2, data=tiny,
                       overrides={"backend": "sim"})


def test_gemm_engine_is_explicit_recorded_and_exact(tiny, tmp_path, monkeypatch):
    assert TrainConfig().gemm_engine in gemm.ENGINES  # picked once, then recorded
    calls = {name: 0 for name in gemm.ENGINES}
    for name, engine in list(gemm.ENGINES.items()):
        def counted(a, b, engine=engine, name=name):
            calls[name] += 1
            return engine(a, b)
        monkeypatch.setitem(gemm.ENGINES, name, counted)
    weights = {}
    for name in sorted(gemm.ENGINES):
        if name == "torch":
            pytest.importorskip("torch")
        before = dict(calls)
        trainer = Trainer(TrainConfig(gemm_engine=name), tmp_path / name, progress=False,
                          data=tiny)
        assert trainer.runs[0].policy.engine == name
        trainer.fit()
        used = {engine for engine in calls if calls[engine] > before[engine]}
        assert used == {name}
        weights[name] = [layer.weights.values.copy() for layer in trainer.runs[0].net.weighted_layers]
        meta, _ = load_checkpoint(tmp_path / name / "checkpoint.npz")
        assert meta["config"]["gemm_engine"] == name
    first, *others = weights.values()
    assert others and all(np.array_equal(a, b) for other in others for a, b in zip(first, other))
    valid = ", ".join(sorted(gemm.ENGINES))
    with pytest.raises(ValueError, match=f"--gemm-engine must be one of {valid}; got 'gpu'"):
        TrainConfig(gemm_engine="gpu")
