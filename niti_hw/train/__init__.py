"""NITI training end to end: models built from `niti_hw.models`, trained on real data by any
`Backend` (the golden model by default), an fp32 PyTorch twin for comparison, checkpoints that
resume bit for bit, and evaluation of a saved run."""

from .backend import Backend, backend_factory
from .backend_names import BACKENDS
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig, parse_schedule
from .evaluation import evaluate_checkpoint
from .trainer import Trainer

__all__ = ["BACKENDS", "Backend", "TrainConfig", "Trainer", "backend_factory",
           "evaluate_checkpoint", "load_checkpoint", "parse_schedule", "save_checkpoint"]
