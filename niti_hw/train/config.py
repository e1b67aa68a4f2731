"""Everything that defines a training run, in one JSON-friendly record."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..data import DATASETS
from ..golden import ROUNDING_MODES
from ..models import get_model


@dataclass(frozen=True)
class TrainConfig:
    model: str = "lenet5"
    dataset: str = "mnist"
    data_root: str | None = None
    epochs: int = 1
    batch_size: int = 64
    seed: int = 0
    mu_schedule: tuple[tuple[int, int], ...] | None = None  # None: the model's default
    activation_mode: str = "pseudo"
    error_mode: str = "pseudo"
    gradient_mode: str = "pseudo"
    loss_mode: str = "pseudo"
    acc_bits: int = 8
    limit_train: int | None = None
    limit_test: int | None = None
    eval_batch_size: int = 500
    hardware: dict | None = None  # sim backend: HardwareParams fields that differ from the defaults

    def __post_init__(self):
        spec = get_model(self.model)
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; valid datasets: "
                             f"{', '.join(DATASETS)}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        for kind in ("activation", "error", "gradient", "loss"):
            if getattr(self, f"{kind}_mode") not in ROUNDING_MODES:
                raise ValueError(f"{kind} rounding mode must be one of {ROUNDING_MODES}")
        schedule = self.mu_schedule or spec.mu_schedule
        schedule = tuple(sorted((int(epoch), int(m_u)) for epoch, m_u in schedule))
        if schedule[0][0] != 0 or any(not 1 <= m_u <= 8 for _, m_u in schedule):
            raise ValueError(
                f"m_u schedule must start at epoch 0 with m_u in 1..8; got {schedule}"
            )
        object.__setattr__(self, "mu_schedule", schedule)
        self.hardware_params()  # refuse bad hardware settings now, with HardwareParams' message

    def hardware_params(self):
        """The hardware the `sim` backend models (niti_hw.params.HardwareParams)."""
        from ..params import HardwareParams

        fields = {f.name for f in dataclasses.fields(HardwareParams)}
        unknown = sorted(set(self.hardware or {}) - fields)
        if unknown:
            raise ValueError(f"unknown hardware settings {unknown}; valid: {sorted(fields)}")
        try:
            return HardwareParams(**(self.hardware or {}))
        except ValueError as error:
            flag = {"rows": "--array", "cols": "--array", "acc_bits": "--accumulator-bits",
                    "exponent": "--exponent"}.get(str(error).split()[0])
            raise ValueError(f"{flag}: {error}" if flag else str(error)) from None

    def mu_at(self, epoch: int) -> int:
        """m_u of the last schedule entry at or before `epoch`."""
        return [m_u for start, m_u in self.mu_schedule if start <= epoch][-1]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown training settings: {sorted(unknown)}")
        return cls(**values)


def parse_schedule(text: str) -> tuple[tuple[int, int], ...]:
    """'0:3,5:2' -> ((0, 3), (5, 2)): m_u 3 from epoch 0, 2 from epoch 5."""
    try:
        pairs = [item.split(":") for item in text.split(",") if item.strip()]
        return tuple((int(epoch), int(m_u)) for epoch, m_u in pairs)
    except ValueError:
        raise ValueError(
            f"m_u schedule must look like '0:3,5:2' (epoch:m_u pairs); got {text!r}"
        ) from None
