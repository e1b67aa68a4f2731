"""Test loss and accuracy of a saved run, on its own dataset or another of the same shape."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..data import load_dataset
from ..models import get_model
from .backend import backend_factory
from .build import build_network
from .config import TrainConfig
from .float_run import FloatRun
from .prepared import prepare
from .resume import read_meta


def evaluate_checkpoint(checkpoint: Path, dataset: str | None = None,
                        data_root: str | None = None, limit_test: int | None = None,
                        backend: str | None = None, device: str | None = None,
                        gemm_engine: str | None = None, data=None) -> pd.DataFrame:
    """One row per run in the checkpoint (NITI, and the fp32 twin if it has one).

    Images are quantised around the pixel mean the run was trained with. Every setting is
    checked, and the backend found, before the data is loaded.
    """
    meta, arrays, epochs, saved, baseline = read_meta(checkpoint)
    values = {**saved, "limit_test": limit_test, "gemm_engine": gemm_engine}
    if dataset is not None and dataset != saved.get("dataset"):
        values.update(dataset=dataset, data_root=None)
    if data_root is not None:
        values["data_root"] = data_root
    for name, value in (("backend", backend), ("device", device)):
        if value is not None:
            values[name] = value
    config = TrainConfig.from_dict(values)
    factory = backend_factory(config.backend)
    if data is None:
        data = load_dataset(config.dataset, config.data_root, limit_train=0,
                            limit_test=config.limit_test)
    if not len(data.test_labels):
        raise ValueError(f"dataset {data.name} has no test images")
    prepared = prepare(data, mean=meta.get("pixel_mean"))
    trained = (tuple(meta.get("input_shape", prepared.image_shape)),
               meta.get("classes", prepared.classes))
    if trained != (prepared.image_shape, prepared.classes):
        raise ValueError(
            f"{checkpoint} holds a {config.model} network for {_shape(trained[0])} images in "
            f"{trained[1]} classes; {data.name} has {_shape(prepared.image_shape)} images in "
            f"{prepared.classes} classes")
    built = build_network(get_model(config.model), prepared.image_shape, prepared.classes,
                          config.seed, config.acc_bits)
    runs = [factory(built, prepared, config)]
    if baseline:
        runs.append(FloatRun(built, prepared, config))
    rows = []
    for run in runs:
        try:
            run.load_state_arrays(arrays)
        except KeyError as error:
            raise ValueError(f"{checkpoint} lacks {error}: not a complete niti-hw checkpoint") \
                from None
        loss, accuracy = run.evaluate(prepared.test_images, prepared.test_labels)
        rows.append({"run": run.label, "epochs": epochs, "dataset": data.name,
                     "test_images": len(prepared.test_labels), "test_loss": loss,
                     "test_accuracy": accuracy})
    return pd.DataFrame(rows)


def _shape(shape) -> str:
    return "x".join(map(str, shape))
