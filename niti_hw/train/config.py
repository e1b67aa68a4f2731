"""Everything that defines a training run, in one JSON-friendly record."""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass

from ..data import DATASETS
from ..golden import ROUNDING_MODES
from ..golden.gemm import DEFAULT_ENGINE, ENGINES
from ..golden.init import ACC_BITS_RANGE
from ..models import get_model
from .backend_names import BACKENDS

DEVICES = ("cpu", "cuda")


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
    backend: str = "golden"
    device: str = "cpu"
    gemm_engine: str | None = None  # None: the golden model's default, fixed and recorded here
    hardware: dict | None = None  # sim backend: HardwareParams fields that differ from the defaults

    def __post_init__(self):
        spec = get_model(self.model)
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; valid datasets: "
                             f"{', '.join(DATASETS)}")
        self._check_numbers()
        self._check_engine()
        self._check_hardware()
        for kind in ("activation", "error", "gradient", "loss"):
            if getattr(self, f"{kind}_mode") not in ROUNDING_MODES:
                raise ValueError(f"{kind} rounding mode must be one of {ROUNDING_MODES}")
        schedule = self.mu_schedule or spec.mu_schedule
        schedule = tuple(sorted((int(epoch), int(m_u)) for epoch, m_u in schedule))
        repeated = [epoch for (epoch, _), (after, _) in zip(schedule, schedule[1:]) if epoch == after]
        if repeated:
            raise ValueError(f"--mu-schedule names epoch {repeated[0]} twice, so its m_u is "
                             "ambiguous; give each epoch once")
        if not schedule or schedule[0][0] != 0 or any(not 1 <= m_u <= 8 for _, m_u in schedule):
            text = ",".join(f"{epoch}:{m_u}" for epoch, m_u in schedule)
            raise ValueError(f"--mu-schedule must start at epoch 0 with m_u in 1..8; got {text!r}")
        object.__setattr__(self, "mu_schedule", schedule)

    def _check_numbers(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size", "limit_train", "limit_test"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{_flag(name)} must be >= 1; got {value}")
        if self.seed < 0:
            raise ValueError(f"--seed must be >= 0; got {self.seed}")
        low, high = ACC_BITS_RANGE
        if not low <= self.acc_bits <= high:
            raise ValueError(f"--acc-bits must be in {low}..{high} (8 is plain int8; the paper "
                             f"uses 12 or 16); got {self.acc_bits}")

    def _check_engine(self) -> None:
        """Backend, device and GEMM engine; the engine's default is fixed (and recorded) here."""
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; valid backends: "
                             f"{', '.join(BACKENDS)}")
        if self.device not in DEVICES:
            raise ValueError(f"--device must be one of {', '.join(DEVICES)}; got {self.device!r}")
        if self.device != "cpu" and self.backend != "torch":
            raise ValueError(f"--device {self.device} needs --backend torch; the {self.backend} "
                             "backend runs on the CPU")
        engine = self.gemm_engine or DEFAULT_ENGINE
        if engine not in ENGINES:
            raise ValueError(f"--gemm-engine must be one of {', '.join(sorted(ENGINES))}; "
                             f"got {engine!r}")
        if engine == "torch" and importlib.util.find_spec("torch") is None:
            raise ValueError("--gemm-engine torch needs the torch extra: "
                             "pip install 'niti-hw[torch]', or pass --gemm-engine blas")
        object.__setattr__(self, "gemm_engine", engine)

    def _check_hardware(self) -> None:
        """The datapath model's settings: only for the sim backend, and a valid HardwareParams."""
        if self.hardware and self.backend != "sim":
            raise ValueError("--array, --accumulator-bits, --exponent and --exponent-headroom "
                             "describe the datapath "
                             f"model: they need --backend sim, not {self.backend}")
        self.hardware_params()

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
                    "exponent": "--exponent", "exponent_headroom": "--exponent-headroom",
                    }.get(str(error).split()[0])
            raise ValueError(f"{flag}: {error}" if flag else str(error)) from None

    def mu_at(self, epoch: int) -> int:
        """m_u of the last schedule entry at or before `epoch`."""
        return [m_u for start, m_u in self.mu_schedule if start <= epoch][-1]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Read `to_dict()` back (JSON turns the schedule's pairs into lists)."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown training settings: {sorted(unknown)}")
        values = dict(values)
        if values.get("mu_schedule") is not None:
            values["mu_schedule"] = tuple(map(tuple, values["mu_schedule"]))
        return cls(**values)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def parse_schedule(text: str) -> tuple[tuple[int, int], ...]:
    """'0:3,5:2' -> ((0, 3), (5, 2)): m_u 3 from epoch 0, 2 from epoch 5.

    The text must say one thing only: no empty entry (a lost pair), epochs in increasing order
    (as the run will use them), each epoch once (TrainConfig refuses a repeat, whatever its source).
    """
    try:
        pairs = [item.split(":") for item in text.split(",")]
        schedule = tuple((int(epoch), int(m_u)) for epoch, m_u in pairs)
    except ValueError:
        schedule = ()
    if not schedule or any(epoch < 0 for epoch, _ in schedule):
        raise ValueError(
            f"--mu-schedule must look like '0:3,5:2' (epoch:m_u pairs, no empty entry); "
            f"got {text!r}"
        )
    for (epoch, _), (after, _) in zip(schedule, schedule[1:]):
        if after == epoch:
            raise ValueError(f"--mu-schedule names epoch {epoch} twice in {text!r}, so its m_u "
                             "is ambiguous; give each epoch once")
        if after < epoch:
            raise ValueError(f"--mu-schedule epochs must increase; got {after} after {epoch} in "
                             f"{text!r} (write the pairs in epoch order)")
    return schedule
