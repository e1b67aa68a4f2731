"""Train a NITI network (and optionally its fp32 twin) epoch by epoch, with metrics and resume."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from ..data import load_dataset
from ..models import get_model
from .build import build_network
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .float_run import FloatRun
from .integer_run import IntegerRun
from .prepared import batches, epoch_order, prepare
from .report import plot_curves

CHECKPOINT, METRICS, CURVES, SETTINGS = "checkpoint.npz", "metrics.csv", "curves.png", "config.json"


class Trainer:
    """Owns the runs, the output folder and the epoch loop."""

    def __init__(self, config: TrainConfig, out_dir, baseline: bool = False,
                 progress: bool = True, data=None):
        self.config, self.out_dir, self.progress = config, Path(out_dir), progress
        dataset = data or load_dataset(config.dataset, config.data_root,
                                       limit_train=config.limit_train,
                                       limit_test=config.limit_test)
        self.data = prepare(dataset)
        built = build_network(get_model(config.model), self.data.image_shape, self.data.classes,
                              config.seed, config.acc_bits)
        self.runs = [IntegerRun(built, self.data, config)]
        if baseline:
            self.runs.append(FloatRun(built, self.data, config))
        self.epoch = 0
        self.metrics = pd.DataFrame()

    @classmethod
    def resume(cls, checkpoint: Path, epochs: int, progress: bool = True, data=None):
        """Continue a run from its checkpoint up to `epochs` in total, bit for bit."""
        meta, arrays = load_checkpoint(checkpoint)
        try:
            config = TrainConfig.from_dict({**meta["config"], "epochs": epochs,
                                            "mu_schedule": tuple(map(tuple,
                                                                     meta["config"]["mu_schedule"]))})
            trainer = cls(config, Path(checkpoint).parent, meta["baseline"], progress, data)
            for run in trainer.runs:
                run.load_state_arrays(arrays)
        except (KeyError, TypeError) as error:
            raise ValueError(f"{checkpoint} lacks {error}: not a complete niti-hw checkpoint; "
                             "nothing was changed") from None
        trainer.epoch = meta["epoch"]
        metrics = trainer.out_dir / METRICS
        if metrics.exists():
            trainer.metrics = pd.read_csv(metrics).query("epoch < @trainer.epoch")
        return trainer

    def check_fresh_output(self) -> None:
        """Refuse to overwrite an earlier run's checkpoint (no data is ever lost)."""
        if (self.out_dir / CHECKPOINT).exists():
            raise ValueError(
                f"{self.out_dir} already holds a run ({CHECKPOINT}); resume it with "
                f"--resume {self.out_dir / CHECKPOINT} or choose another --out"
            )

    def fit(self) -> pd.DataFrame:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / SETTINGS).write_text(json.dumps(self.config.to_dict(), indent=2))
        while self.epoch < self.config.epochs:
            rows = [self._epoch(run) for run in self.runs]
            self.metrics = pd.concat([self.metrics, pd.DataFrame(rows)], ignore_index=True)
            self.epoch += 1
            self._save()
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
        return {"run": run.label, "epoch": epoch, "m_u": self.config.mu_at(epoch),
                "train_loss": loss / len(order), "train_accuracy": correct / len(order),
                "test_loss": test_loss, "test_accuracy": test_accuracy,
                "train_seconds": seconds, "images_per_s": len(order) / seconds}

    def _save(self) -> None:
        arrays = {}
        for run in self.runs:
            arrays.update(run.state_arrays())
        meta = {"config": self.config.to_dict(), "epoch": self.epoch,
                "baseline": len(self.runs) > 1, "pixel_mean": self.data.mean,
                "input_exp": self.data.exp}
        save_checkpoint(self.out_dir / CHECKPOINT, meta, arrays)
        tmp = self.out_dir / (METRICS + ".tmp")
        self.metrics.to_csv(tmp, index=False)
        tmp.replace(self.out_dir / METRICS)
        plot_curves(self.metrics, self.out_dir / CURVES)
