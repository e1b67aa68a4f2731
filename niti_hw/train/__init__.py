"""NITI training end to end: models built from `niti_hw.models`, the golden network trained on
real data, an fp32 PyTorch twin for comparison, checkpoints that resume bit for bit."""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig, parse_schedule
from .trainer import Trainer

__all__ = ["TrainConfig", "Trainer", "load_checkpoint", "parse_schedule", "save_checkpoint"]
