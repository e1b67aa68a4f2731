"""One frozen description of the hardware, validated once.

The RTL generators, the cocotb benches, the synthesis flow and the cycle and energy model
(`niti_hw.perf`) all read the numbers from a `HardwareParams`; nothing else spells them out. Benches receive it as JSON (`to_json` /
`from_json`) so a simulator process sees exactly the object the test built.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from niti_hw.golden import DEFAULT_LFSR_LANES, INT8_MAX, INT32_SAFE_K, ROUNDING_MODES
from niti_hw.golden.numbers import signed_limit

DATAFLOWS = ("output_stationary", "weight_stationary", "input_stationary")
EXPONENTS = ("tensor", "tile", "predicted")
"""Where a narrowing's shift comes from: B of the whole int32 tensor (SPEC), of each rows x cols
tile (the RTL Datapath), or the same layer's B at the previous step (no int32 tensor buffer)."""
ROUND_MODES = tuple(ROUNDING_MODES)

# An int8 x int8 product with |operand| <= 127 needs 15 bits plus sign; the accumulator holds at least
# that and at most the int32 of SPEC.
PRODUCT_BITS = 16
MAX_ACC_BITS = 32
MAX_ARRAY_DIM = 1024  # the cost model: TPU-class arrays and beyond
RTL_MAX_ARRAY_DIM = 64  # what the RTL is generated, simulated and synthesised for
MAX_LANES = 64
MAX_LFSR_LANES = 256
MAX_BUFFER_WORDS = 2**30
MAX_SRAM_KIB = 2**20  # 1 GiB per buffer
MAX_EXPONENT_HEADROOM = 8

# The fields the RTL generators read (the generated Verilog's header records them); the others
# describe the memory system and clock for the cost model only.
RTL_FIELDS = ("acc_bits", "cols", "dataflow", "lanes", "lfsr_lanes", "lfsr_seed", "round_mode",
              "rows")


@dataclass(frozen=True)
class HardwareParams:
    """Array shape, post-processing lanes, accumulator width, dataflow, LFSR lanes and memories.

    `lanes` int32 values per beat flow through the bitwidth detector and the rounding unit; it must
    divide `cols` (an array row is cut into cols/lanes beats) and `lfsr_lanes` (element j of a
    tensor uses LFSR lane j % lfsr_lanes, so each beat position owns lfsr_lanes/lanes LFSRs).

    `dataflow`: the RTL is output stationary; weight and input stationary exist in the cost model.
    `tensor_buffer_words`: int32 entries of the on-chip buffer that holds a layer's whole int32
    output until its bitwidth is known (NITI takes B over the whole tensor); larger tensors spill to
    DRAM. `ifmap_sram_kib`, `filter_sram_kib`, `ofmap_sram_kib`: operand and result SRAMs (as in
    SCALE-Sim). `dram_bytes_per_cycle`: off-chip bandwidth at the array clock. `clock_mhz`: None
    takes the clock from the synthesis report (`niti_hw.perf.clock`). `exponent`: where the shift
    of each narrowing comes from (EXPONENTS); the datapath model `niti_hw.datapath` computes it.
    `exponent_headroom`: bits a predicted exponent adds to the previous step's B, so that a tensor
    that grew by that much still fits (each bit costs one bit of resolution); predicted only.
    """

    rows: int = 8
    cols: int = 8
    lanes: int = 8
    acc_bits: int = 32
    dataflow: str = "output_stationary"
    lfsr_lanes: int = DEFAULT_LFSR_LANES
    lfsr_seed: int = 1
    round_mode: str = "pseudo"
    tensor_buffer_words: int = 16384
    ifmap_sram_kib: int = 64
    filter_sram_kib: int = 64
    ofmap_sram_kib: int = 64
    dram_bytes_per_cycle: float = 8.0
    clock_mhz: float | None = None
    exponent: str = "tensor"
    exponent_headroom: int = 0

    def __post_init__(self) -> None:
        _check_int("rows", self.rows, 1, MAX_ARRAY_DIM)
        _check_int("cols", self.cols, 1, MAX_ARRAY_DIM)
        _check_int("lanes", self.lanes, 1, MAX_LANES)
        _check_int("acc_bits", self.acc_bits, PRODUCT_BITS, MAX_ACC_BITS,
                   why=f"an int8 x int8 product needs {PRODUCT_BITS} bits and SPEC accumulates in int32")
        _check_int("lfsr_lanes", self.lfsr_lanes, 1, MAX_LFSR_LANES)
        _check_int("lfsr_seed", self.lfsr_seed, 0, 2**32 - 1)
        if self.cols % self.lanes:
            raise ValueError(
                f"lanes must divide cols (an array row of {self.cols} results is cut into beats of "
                f"`lanes` values); got lanes={self.lanes}, valid choices: {_divisors(self.cols)}")
        if self.lfsr_lanes % self.lanes:
            raise ValueError(
                f"lanes must divide lfsr_lanes={self.lfsr_lanes} (each beat position owns "
                f"lfsr_lanes/lanes LFSRs); got lanes={self.lanes}, valid choices: "
                f"{_divisors(self.lfsr_lanes)}")
        _check_int("tensor_buffer_words", self.tensor_buffer_words, self.rows * self.cols,
                   MAX_BUFFER_WORDS, why=f"it must hold at least one {self.rows}x{self.cols} tile")
        for name in ("ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib"):
            _check_int(name, getattr(self, name), 1, MAX_SRAM_KIB)
        _check_positive("dram_bytes_per_cycle", self.dram_bytes_per_cycle, "bytes per cycle")
        if self.clock_mhz is not None:
            _check_positive("clock_mhz", self.clock_mhz,
                            "MHz, or None to read the synthesis report")
        if self.dataflow not in DATAFLOWS:
            raise ValueError(f"dataflow must be one of {DATAFLOWS}; got {self.dataflow!r}")
        if self.exponent not in EXPONENTS:
            raise ValueError(f"exponent must be one of {EXPONENTS}; got {self.exponent!r}")
        _check_int("exponent_headroom", self.exponent_headroom, 0, MAX_EXPONENT_HEADROOM,
                   why="bits added to a predicted B")
        if self.exponent_headroom and self.exponent != "predicted":
            raise ValueError(f"exponent_headroom applies to exponent='predicted' only; got "
                             f"exponent={self.exponent!r} with exponent_headroom="
                             f"{self.exponent_headroom}")
        if self.round_mode not in ROUND_MODES:
            raise ValueError(f"round_mode must be one of {ROUND_MODES}; got {self.round_mode!r}")

    @property
    def max_k(self) -> int:
        """Largest K the accumulator holds (K * 127**2 < 2**(acc_bits-1)); SPEC's int32 bound at 32 bits."""
        return min(signed_limit(self.acc_bits) // (INT8_MAX * INT8_MAX),
                   INT32_SAFE_K - 1)

    def check_rtl(self) -> None:
        """Refuse an array the RTL is not generated for (the cost model takes larger ones)."""
        if max(self.rows, self.cols) > RTL_MAX_ARRAY_DIM:
            raise ValueError(
                f"the RTL is generated for arrays up to {RTL_MAX_ARRAY_DIM}x{RTL_MAX_ARRAY_DIM}; "
                f"got {self.rows}x{self.cols} (the cost model, niti-hw estimate, takes up to "
                f"{MAX_ARRAY_DIM}x{MAX_ARRAY_DIM})")

    @property
    def lfsr_groups(self) -> int:
        return self.lfsr_lanes // self.lanes

    @property
    def name(self) -> str:
        return f"{self.rows}x{self.cols}"

    def replace(self, **changes) -> "HardwareParams":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def rtl_json(self) -> str:
        """The fields the RTL generators read, as JSON (the generated Verilog's header)."""
        return json.dumps({name: getattr(self, name) for name in RTL_FIELDS}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "HardwareParams":
        return cls(**json.loads(text))



def _check_int(name: str, value, low: int, high: int, why: str = "") -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int in {low}..{high}; got {value!r}")
    if not low <= value <= high:
        reason = f" ({why})" if why else ""
        raise ValueError(f"{name} must be in {low}..{high}{reason}; got {value}")


def _check_positive(name: str, value, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise ValueError(f"{name} must be a number > 0 ({unit}); got {value!r}")


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


DEFAULT = HardwareParams()
