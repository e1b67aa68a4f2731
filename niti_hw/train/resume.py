"""The rules of resuming a run, checked before any data is loaded or anything is written.

- Results go to `out_dir` (default: the checkpoint's folder). A checkpoint given as the source is
  never written unless it is `out_dir/checkpoint.npz` itself, continued in place.
- A folder whose checkpoint is newer than the source, or belongs to another run, is refused.
- Settings come from the checkpoint. A setting given again must agree with it, except those a
  user may change (`CHANGEABLE`): the change is recorded in the run's history.
- `--mu-schedule` changes m_u from the resumed epoch on; earlier epochs keep what they used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .checkpoint import load_checkpoint
from .config import TrainConfig, _flag

CHECKPOINT, METRICS = "checkpoint.npz", "metrics.csv"
CHANGEABLE = ("epochs", "mu_schedule", "gemm_engine")
"""Settings a resumed run may change; every other one must match the checkpoint."""


OLDER_DEFAULTS = {"backend": "golden", "device": "cpu"}
"""Settings that checkpoints written before they existed lack, and what those runs used."""


class NothingToDo(Exception):
    """The checkpoint already holds the epochs asked for; nothing is changed."""


@dataclass
class ResumePlan:
    config: TrainConfig
    baseline: bool
    epoch: int
    arrays: dict
    meta: dict
    out_dir: Path
    metrics: pd.DataFrame
    history: list


def _show(name: str, value) -> str:
    if name == "mu_schedule" and value is not None:
        return ",".join(f"{epoch}:{m_u}" for epoch, m_u in value)
    return str(value)


def merge_schedule(old, new, epoch: int) -> tuple[tuple[int, int], ...]:
    """`old` for epochs before `epoch`, `new` from `epoch` on, without redundant entries."""
    probe = TrainConfig(mu_schedule=new)
    entries = [(start, m_u) for start, m_u in old if start < epoch]
    entries.append((epoch, probe.mu_at(epoch)))
    entries += [(start, m_u) for start, m_u in probe.mu_schedule if start > epoch]
    merged = []
    for start, m_u in entries:
        if not merged or merged[-1][1] != m_u:
            merged.append((start, m_u))
    return tuple(merged)


def read_meta(checkpoint: Path):
    """(meta, arrays, epochs done, settings, has an fp32 twin) of a checkpoint, checked."""
    meta, arrays = load_checkpoint(checkpoint)
    try:
        epoch, baseline = int(meta["epoch"]), bool(meta["baseline"])
        saved = {**OLDER_DEFAULTS, **meta["config"]}
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{checkpoint} lacks {error}: not a complete niti-hw checkpoint; "
                         "nothing was changed") from None
    return meta, arrays, epoch, saved, baseline


def plan_resume(checkpoint: Path, overrides: dict | None = None, out_dir: Path | None = None,
                baseline: bool | None = None) -> ResumePlan:
    """Check a resume against the rules above; raise ValueError listing what is wrong."""
    checkpoint = Path(checkpoint)
    overrides = {name: value for name, value in (overrides or {}).items() if value is not None}
    meta, arrays, done, saved, saved_baseline = read_meta(checkpoint)
    conflicts = [f"{_flag(name)} {_show(name, value)} (checkpoint: {_show(name, saved.get(name))})"
                 for name, value in overrides.items()
                 if name not in CHANGEABLE and _normal(name, value) != _normal(name, saved.get(name))]
    if baseline and not saved_baseline:
        conflicts.append("--baseline fp32 (checkpoint: no fp32 twin)")
    if conflicts:
        raise ValueError(
            f"{checkpoint} was trained with other settings: {'; '.join(conflicts)}. A resumed "
            "run keeps its settings (only --epochs, --mu-schedule, --gemm-engine and --out may "
            "change): drop these flags, or start a new run; nothing was changed")
    old = TrainConfig.from_dict({**saved, "gemm_engine": overrides.get("gemm_engine")})
    epochs = overrides.get("epochs", old.epochs)
    if epochs <= done:
        raise NothingToDo(f"nothing to do: {checkpoint} already holds {done} epoch(s) and "
                          f"--epochs {epochs} asks for {epochs} in total; pass --epochs above "
                          f"{done} to continue")
    schedule = old.mu_schedule
    if "mu_schedule" in overrides:
        schedule = merge_schedule(old.mu_schedule, overrides["mu_schedule"], done)
    config = dataclasses.replace(old, epochs=epochs, mu_schedule=schedule)
    out_dir = Path(out_dir) if out_dir is not None else checkpoint.parent
    _check_target(checkpoint, out_dir, done, saved)
    changed = {name: [_recorded(name, getattr(old, name)), _recorded(name, getattr(config, name))]
               for name in CHANGEABLE if getattr(old, name) != getattr(config, name)}
    history = list(meta.get("resumes", [])) + [
        {"from": str(checkpoint), "at_epoch": done, "changed": changed}]
    return ResumePlan(config, saved_baseline, done, arrays, meta, out_dir,
                      _earlier_metrics(meta, checkpoint, done), history)


def _recorded(name: str, value):
    return _show(name, value) if name == "mu_schedule" else value


def _normal(name: str, value):
    if name == "mu_schedule" and value is not None:
        return tuple(map(tuple, value))
    if name == "data_root" and value is not None:
        return str(Path(value).expanduser().absolute())
    return value


def _check_target(source: Path, out_dir: Path, done: int, saved: dict) -> None:
    """Refuse to overwrite a checkpoint that is newer than the source or of another run."""
    target = out_dir / CHECKPOINT
    if not target.exists() or target.resolve() == source.resolve():
        return
    try:
        _, _, epoch, other, _ = read_meta(target)
    except ValueError:
        raise ValueError(f"{out_dir} holds a {CHECKPOINT} that is not a readable niti-hw "
                         "checkpoint; choose another --out; nothing was changed") from None
    if epoch > done:
        raise ValueError(
            f"{target} holds {epoch} epoch(s), more than the {done} of {source}: resuming "
            f"into {out_dir} would replace newer results; pass --out a new folder, or resume "
            f"from {target}; nothing was changed")
    settings = [name for name in saved if name not in CHANGEABLE
                and _normal(name, other.get(name)) != _normal(name, saved[name])]
    if settings:
        raise ValueError(f"{out_dir} holds another run ({CHECKPOINT} differs in "
                         f"{', '.join(map(_flag, settings))}); pass --out a new folder; "
                         "nothing was changed")


def _earlier_metrics(meta: dict, checkpoint: Path, done: int) -> pd.DataFrame:
    """The metrics of the epochs before the checkpoint: kept in it, or (older checkpoints) in
    the metrics.csv beside it."""
    if "metrics" in meta:
        metrics = pd.DataFrame(meta["metrics"])
    else:
        path = checkpoint.parent / METRICS
        try:
            metrics = pd.read_csv(path) if path.is_file() else pd.DataFrame()
        except (OSError, ValueError):
            metrics = pd.DataFrame()
    if metrics.empty or "epoch" not in metrics:
        return pd.DataFrame()
    return metrics[metrics.epoch < done].reset_index(drop=True)
