"""Train a NITI network on one backend (and optionally its fp32 twin) epoch by epoch, with
metrics, checkpoints and resume."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from ..atomic_write import atomic_write
from ..data import load_dataset
from ..models import get_model
from .backend import backend_factory, write_reports
from .build import build_network
from .checkpoint import save_checkpoint
from .config import TrainConfig
from .float_run import FloatRun
from .prepared import batches, epoch_order, prepare
from .report import plot_curves
from .resume import CHECKPOINT, METRICS, plan_resume

CURVES, SETTINGS = "curves.png", "config.json"


class Trainer:
    """Owns the runs, the output folder and the epoch loop."""

    def __init__(self, config: TrainConfig, out_dir, baseline: bool = False,
                 progress: bool = True, data=None, history: list | None = None):
        self.config, self.out_dir, self.progress = config, Path(out_dir), progress
        self.history = list(history or [])
        backend = backend_factory(config.backend)  # before the data: a missing one fails fast
        dataset = data or load_dataset(config.dataset, config.data_root,
                                       limit_train=config.limit_train,
                                       limit_test=config.limit_test)
        for split in ("train", "test"):
            if not len(getattr(dataset, f"{split}_labels")):
                raise ValueError(f"dataset {dataset.name} has no {split} images")
        self.data = prepare(dataset)
        built = build_network(get_model(config.model), self.data.image_shape, self.data.classes,
                              config.seed, config.acc_bits)
        check_batch_fits(config, self.data)
        self.runs = [backend(built, self.data, config)]
        if baseline:
            self.runs.append(FloatRun(built, self.data, config))
        self.epoch = 0
        self.metrics = pd.DataFrame()

    @classmethod
    def resume(cls, checkpoint: Path, epochs: int | None = None, progress: bool = True,
               data=None, out_dir: Path | None = None, overrides: dict | None = None,
               baseline: bool | None = None):
        """Continue a run from its checkpoint up to `epochs` in total, bit for bit.

        The rules (what may change, where results go) are in `resume.py`; a refused resume
        raises before any data is loaded, and nothing is written until `fit`.
        """
        overrides = dict(overrides or {})
        if epochs is not None:
            overrides["epochs"] = epochs
        plan = plan_resume(checkpoint, overrides, out_dir, baseline)
        trainer = cls(plan.config, plan.out_dir, plan.baseline, progress, data, plan.history)
        expected = (plan.meta.get("pixel_mean"), plan.meta.get("input_exp"))
        if expected != (None, None) and expected != (trainer.data.mean, trainer.data.exp):
            raise ValueError(
                f"{checkpoint} was trained on data with pixel mean {expected[0]}; this data has "
                f"{trainer.data.mean}: other images than the run's (check --data-root and the "
                "limits); nothing was changed")
        try:
            for run in trainer.runs:
                run.load_state_arrays(plan.arrays)
        except KeyError as error:
            raise ValueError(f"{checkpoint} lacks {error}: not a complete niti-hw checkpoint; "
                             "nothing was changed") from None
        trainer.epoch, trainer.metrics = plan.epoch, plan.metrics
        return trainer

    def check_fresh_output(self) -> None:
        check_fresh_output(self.out_dir)

    @property
    def settings(self) -> dict:
        """What config.json records: the configuration, the twin, and every resume."""
        return {**self.config.to_dict(), "baseline": len(self.runs) > 1,
                "resumes": self.history}

    def fit(self) -> pd.DataFrame:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / SETTINGS).write_text(json.dumps(self.settings, indent=2))
        while self.epoch < self.config.epochs:
            rows = [self._epoch(run) for run in self.runs]
            metrics = pd.concat([self.metrics, pd.DataFrame(rows)], ignore_index=True)
            self.metrics = metrics.astype({"m_u": "Int64"})
            self.epoch += 1
            self._save()
            write_reports(self.runs, self.out_dir, self.epoch - 1)
        return self.metrics

    def _epoch(self, run) -> dict:
        data, epoch = self.data, self.epoch
        order = epoch_order(self.config.seed, epoch, len(data.train_labels))
        loss = correct = seen = 0
        start = time.perf_counter()
        bar = tqdm(total=len(order), unit="img", disable=not self.progress, leave=False,
                   desc=f"{run.label} epoch {epoch + 1}/{self.config.epochs}")
        for index in batches(order, self.config.batch_size):
            batch_loss, batch_correct = run.train_batch(index, epoch)
            loss, correct, seen = loss + batch_loss, correct + batch_correct, seen + len(index)
            bar.update(len(index))
            bar.set_postfix(loss=f"{loss / seen:.3f}", acc=f"{correct / seen:.3f}", refresh=False)
        bar.close()
        seconds = time.perf_counter() - start
        test_loss, test_accuracy = run.evaluate(data.test_images, data.test_labels)
        return {"run": run.label, "epoch": epoch,
                "m_u": None if isinstance(run, FloatRun) else self.config.mu_at(epoch),
                "train_loss": loss / len(order), "train_accuracy": correct / len(order),
                "test_loss": test_loss, "test_accuracy": test_accuracy,
                "train_seconds": seconds, "images_per_s": len(order) / seconds}

    def _save(self) -> None:
        arrays = {}
        for run in self.runs:
            arrays.update(run.state_arrays())
        meta = {"config": self.config.to_dict(), "epoch": self.epoch,
                "baseline": len(self.runs) > 1, "pixel_mean": self.data.mean,
                "input_exp": self.data.exp, "input_shape": list(self.data.image_shape),
                "classes": self.data.classes, "resumes": self.history,
                "metrics": _records(self.metrics)}
        save_checkpoint(self.out_dir / CHECKPOINT, meta, arrays)
        with atomic_write(self.out_dir / METRICS) as tmp:
            self.metrics.to_csv(tmp, index=False)
        plot_curves(self.metrics, self.out_dir / CURVES)


def check_batch_fits(config: TrainConfig, data) -> None:
    """Refuse, before anything is written, a batch whose weight-gradient GEMM the golden model
    would refuse at the first step (SPEC's int32 bound, on every backend), naming the layer and
    the largest --batch-size that fits."""
    from ..params import HardwareParams
    from ..perf.lowering import check_reductions, lower

    h, w, c = data.image_shape
    batch = min(config.batch_size, len(data.train_labels))
    ops = lower(config.model, (c, h, w), batch, classes=data.classes)
    check_reductions(ops, HardwareParams(acc_bits=32), f"{config.model} {c}x{h}x{w} batch {batch}",
                     batch, batch_flag="--batch-size")


def check_fresh_output(out_dir: Path) -> None:
    """Refuse to overwrite an earlier run's checkpoint (no data is ever lost)."""
    if (Path(out_dir) / CHECKPOINT).exists():
        raise ValueError(
            f"{out_dir} already holds a run ({CHECKPOINT}); resume it with "
            f"--resume {Path(out_dir) / CHECKPOINT} or choose another --out"
        )


def _records(metrics: pd.DataFrame) -> list[dict]:
    """Rows as plain JSON values (missing m_u of the fp32 twin as null)."""
    return [{key: _plain(value) for key, value in row.items()}
            for row in metrics.astype(object).to_dict("records")]


def _plain(value):
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value
