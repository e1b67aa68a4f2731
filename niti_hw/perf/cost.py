"""Cycles, memory traffic and energy of a lowered training step on a `HardwareParams` array.

`estimate(ops, params)` gives one row per operation. The model, in one place:

- GEMMs run on the rows x cols array in `params.dataflow`. Timing "rtl": output stationary is the
  RTL tensor datapath exactly: the GEMM row (operands, drain into the scratchpad), the bitwidth row
  (detector and k latch) and the rounding row (the replay) add up to `timing.tensor_gemm_cycles`;
  the fp32 datapath drains the bare array (`timing.array_gemm_cycles`); weight and input
  stationary use `timing.stationary_gemm_cycles`. Timing "scalesim": SCALE-Sim 3.0.0's cycle count
  for the dataflow (`timing.scalesim_gemm_cycles`) and its SRAM and DRAM access counts
  (`scalesim_memory.scalesim_accesses`, one word per value, the result included): SCALE-Sim has
  no int32 tensor buffer, every result goes through the ofmap SRAM to DRAM.
- Operands come from DRAM into the ifmap (A) and filter (B) SRAMs, half of each SRAM holding the
  working set (double buffering): an operand is fetched once when its reused block fits, else once
  per fold that needs it. SRAM reads feed the array fold by fold. WS/IS add K-fold partial sums in
  the ofmap SRAM (spilled to DRAM when a column block's partials do not fit).
  The ifmap SRAM holds A's source values (an im2col A: the input tensor, expanded on the way to
  the array), so a block of A never takes more than the whole source.
  Against SCALE-Sim 3.0.0 (`sw/results/scalesim_bytes.csv`, 282 layers, OS/WS/IS, 64 and 1 KiB
  SRAMs): the array's SRAM operand reads are the same quantity and equal on every layer. Operand
  fetches equal SCALE-Sim's on 257 (A) and 272 (B) of 282, never more A: the output-stationary RTL
  walks row blocks outer, so B is fetched once per row block unless all of it fits (SCALE-Sim walks
  column blocks outer and needs one K x cols block to fit: 23x fewer weight bytes on VGG16 conv2,
  32x32); a block here fits in half the SRAM (there: fewer than 50 sets of floor(words / 100)); an
  im2col A is fetched as its input tensor (SCALE-Sim fetches repeated window values again once the
  input overflows). Results differ by design: int32 (4 bytes; SCALE-Sim's words are 1 byte) into
  the tensor buffer, reaching DRAM only when they spill, where SCALE-Sim drains every result and
  partial sum.
- int32 results ("acc") go to the tensor buffer of `tensor_buffer_words` entries; what does not fit
  spills to DRAM and is read back by the rounding pass. B is taken on the drain (a few cycles of
  tail) unless col2im still adds into the values, then it is a pass of its own.
- Streaming ops (bitwidth, round, ReLU, pooling, col2im, loss, update) move `lanes` values per cycle
  (the update at `timing.update_cycles`; the loss, m samples of n classes, a row at a time at
  `timing.loss_cycles`); their int8/mask/index/weight inputs and outputs are DRAM traffic, unless
  fused into one pass (`fused`, `perf.fusion`) or left on chip for the next op (`keep_on_chip`,
  `perf.locality`, which also spares a GEMM the fetch of an operand).
- Every op overlaps its DRAM traffic with its compute: stall = DRAM cycles beyond compute cycles at
  `dram_bytes_per_cycle`.
- Datapath "fp32": the same array with fp32 MACs and 4-byte values everywhere; no bitwidth or
  rounding passes, no tensor buffer (results go to DRAM), the update reads the fp32 gradient. The
  streaming ops keep the int32 ALU energy (they are a small share; the MACs and bytes dominate).
"""

from __future__ import annotations

from dataclasses import replace
from math import ceil

import numpy as np
import pandas as pd

from niti_hw.params import HardwareParams
from niti_hw.perf import locality, timing
from niti_hw.perf.bounds import capacity_bound_bytes, compute_bound_cycles
from niti_hw.perf.fusion import fuse
from niti_hw.perf.energy import DEFAULT_PJ, check_energy, sram_pj_per_byte
from niti_hw.perf.lowering import ACC, ACT, INDEX, MASK, WEIGHT, Op
from niti_hw.perf.mapping import (Blocks, Mapping, array_cycles, gemm_cost, rtl_mapping,
                                  runs_on_rtl)
from niti_hw.perf.scalesim_memory import scalesim_accesses
from niti_hw.perf.search import OBJECTIVES, best_mapping

TIMINGS = ("rtl", "scalesim")
BOUNDS = ("compute_bound_cycles", "compulsory_bytes", "capacity_bound_bytes")
MAPPINGS = ("rtl", "best", "best-rtl")
DATAPATHS = ("int8", "fp32")
COLUMNS = ["layer", "phase", "op", "m", "n", "k", "macs", "elements", "compute_cycles",
           "stall_cycles", "cycles", "utilisation", "sram_read_bytes", "sram_write_bytes",
           "dram_read_bytes", "dram_write_bytes", "spill_bytes", "energy_pj"]
ENERGY_PARTS = ("mac", "alu", "register", "sram", "dram")


def value_bits(kind: str, datapath: str, params: HardwareParams, weight_bits: int) -> int:
    """Stored bits of one value of `kind` on `datapath`."""
    if kind == MASK:
        return 1
    if kind == INDEX:
        return 8
    if datapath == "fp32":
        return 32
    return {ACT: 8, ACC: 8 * ceil(params.acc_bits / 8), WEIGHT: 8 * ceil(weight_bits / 8)}[kind]


def nbytes(kind: str, count: int, datapath: str, params: HardwareParams, weight_bits: int) -> int:
    return ceil(count * value_bits(kind, datapath, params, weight_bits) / 8)


class Traffic:
    """Bytes one op moves, per on-chip buffer ('ifmap', 'filter', 'ofmap', 'tensor'): SRAM reads and
    writes, and the DRAM reads and writes made on the buffer's behalf ('direct': values an op reads
    from or writes to DRAM with no buffer between, such as a streaming op's inputs and outputs)."""

    def __init__(self):
        self.sram_read: dict[str, int] = {}
        self.sram_write: dict[str, int] = {}
        self.dram_reads: dict[str, int] = {}
        self.dram_writes: dict[str, int] = {}
        self.spill = 0
        self.legal = True  # a GEMM mapping whose blocks fit their SRAMs (niti_hw.perf.mapping)

    def read(self, buffer: str, count: int) -> None:
        self.sram_read[buffer] = self.sram_read.get(buffer, 0) + count

    def write(self, buffer: str, count: int) -> None:
        self.sram_write[buffer] = self.sram_write.get(buffer, 0) + count

    def fetch(self, buffer: str, count: int) -> None:
        """DRAM -> chip on behalf of `buffer`."""
        self.dram_reads[buffer] = self.dram_reads.get(buffer, 0) + count

    def store(self, buffer: str, count: int) -> None:
        """Chip -> DRAM on behalf of `buffer`."""
        self.dram_writes[buffer] = self.dram_writes.get(buffer, 0) + count

    @property
    def dram_read(self) -> int:
        return sum(self.dram_reads.values())

    @property
    def dram_write(self) -> int:
        return sum(self.dram_writes.values())


DETECT_TAIL = timing.DETECTOR_LATENCY + timing.K_LATCH
"""Cycles from the last value written to the scratchpad to the replay's first read (B on the drain)."""


def gemm_cycles(m: int, n: int, k: int, params: HardwareParams, timing_model: str = "rtl",
                datapath: str = "int8", mapping: Mapping | None = None):
    """Cycles of the GEMM row of one M x N x K GEMM under `mapping` (default: the RTL's schedule).
    Output stationary int8: the tensor datapath up to the last row written (with DETECT_TAIL and the
    replay, `timing.tensor_gemm_cycles`). Takes arrays of block sizes in `mapping` too."""
    df = params.dataflow
    if timing_model == "scalesim":
        return timing.scalesim_gemm_cycles(m, n, k, df, params)
    mapping = mapping or rtl_mapping(m, n, k)
    blocks = Blocks(m, n, k, mapping.order, mapping.block_m, mapping.block_n, mapping.block_k)
    cycles = array_cycles(blocks, df, params)
    if df != "output_stationary":
        return cycles
    if datapath == "int8":
        return cycles - 1 + timing.tensor_detect_cycles(params) - DETECT_TAIL
    return cycles - 1 + timing.first_row_latency(params) + params.rows


def _gemm_traffic(op: Op, params: HardwareParams, datapath: str, weight_bits: int,
                  t: Traffic, mapping: Mapping) -> None:
    """Operand fetches and array reads under `mapping`; an operand the op before left in its SRAM
    (`Op.kept_in`, `perf.locality`) fits there whole, so it is never fetched."""
    (_, a_src), (_, b_src) = op.reads
    bi = value_bits(ACT, datapath, params, weight_bits) // 8
    bo = value_bits(ACC, datapath, params, weight_bits) // 8
    cost = gemm_cost(op.m, op.n, op.k, mapping.order, mapping.block_m, mapping.block_n,
                     mapping.block_k, params, a_src, b_src, bi, bo)
    kept = {tensor for tensor, _ in op.kept_in}
    fetch_a = 0 if op.reads[0].tensor in kept else cost.fetch_a
    fetch_b = 0 if op.reads[1].tensor in kept else cost.fetch_b
    t.fetch("ifmap", fetch_a)
    t.fetch("filter", fetch_b)
    t.write("ifmap", fetch_a)
    t.write("filter", fetch_b)
    t.read("ifmap", cost.read_a)
    t.read("filter", cost.read_b)
    t.read("ofmap", cost.partial_sram)
    t.write("ofmap", cost.partial_sram)
    t.fetch("ofmap", cost.partial_dram)
    t.store("ofmap", cost.partial_dram)
    t.legal = cost.legal


def _scalesim_traffic(op: Op, params: HardwareParams, datapath: str, weight_bits: int,
                      t: Traffic) -> None:
    """SCALE-Sim's counts in words of the operand width: array reads of A (ifmap) and B (filter),
    result and partial-sum writes to the ofmap SRAM, the DRAM fetches and drains behind them."""
    word = value_bits(ACT, datapath, params, weight_bits) // 8
    counts = scalesim_accesses(op.m, op.n, op.k, params.dataflow, params,
                               a_values=op.reads[0][1], word_bytes=word)
    t.read("ifmap", counts["ifmap_sram_reads"] * word)
    t.read("filter", counts["filter_sram_reads"] * word)
    t.write("ofmap", counts["ofmap_sram_writes"] * word)
    t.fetch("ifmap", counts["ifmap_dram_reads"] * word)
    t.fetch("filter", counts["filter_dram_reads"] * word)
    t.store("ofmap", counts["ofmap_dram_writes"] * word)


def _stored(t: Traffic, kind: str, count: int, write: bool, params: HardwareParams,
            datapath: str, weight_bits: int) -> None:
    """Values an op reads or writes: int32 ones in the tensor buffer (spilling), others in DRAM."""
    size = nbytes(kind, count, datapath, params, weight_bits)
    if kind == ACC and datapath == "int8":
        kept = min(count, params.tensor_buffer_words)
        on_chip = nbytes(ACC, kept, datapath, params, weight_bits)
        spilled = size - on_chip
        (t.write if write else t.read)("tensor", on_chip)
        if write:
            t.store("tensor", spilled)
            t.spill += spilled
        else:
            t.fetch("tensor", spilled)
        return
    if write:
        t.store("direct", size)
    else:
        t.fetch("direct", size)


def _stream_cycles(op: Op, params: HardwareParams) -> int:
    if op.op == "bitwidth":
        if not op.reads:  # on the GEMM's drain
            return DETECT_TAIL
        return timing.detector_cycles(op.elements, params) + timing.K_LATCH
    if op.op.startswith("round"):  # the replay of the scratchpad through ShiftRound (and fused ops)
        return timing.tensor_replay_cycles(op.elements, 1, params)
    if op.op == "weight_update":
        return timing.update_cycles(op.elements, params)
    if op.op == "loss_gradient":  # m samples of n classes, a row at a time
        return timing.loss_cycles(op.m, op.n)
    return ceil(op.elements / params.lanes)


BUFFERS = ("ifmap", "filter", "ofmap", "tensor")
"""The on-chip memories: the three operand SRAMs and the int32 tensor buffer."""


def buffer_kib(buffer: str, params: HardwareParams) -> float:
    """Capacity of one on-chip memory in KiB (the tensor buffer holds int32 words)."""
    if buffer == "tensor":
        return params.tensor_buffer_words * 4 / 1024
    return getattr(params, f"{buffer}_sram_kib")


def fp32_ops(ops: list[Op]) -> list[Op]:
    """The same step on an fp32 datapath: no narrowing passes; the update reads the gradient."""
    out = []
    for op in ops:
        if op.op in ("bitwidth", "round"):
            continue
        if op.op == "weight_update":
            op = replace(op, reads=op.reads + ((ACC, op.elements),))
        out.append(op)
    return out


def op_traffic(op: Op, params: HardwareParams, timing_model: str = "rtl",
               datapath: str = "int8", weight_bits: int = 8,
               mapping: Mapping | None = None) -> Traffic:
    """The bytes one op moves (`estimate` sums them per row). A GEMM's operands move as `mapping`
    (default: the RTL's schedule) has them; its result goes to the int32 tensor buffer (timing
    "rtl") or, as in SCALE-Sim, through the ofmap SRAM to DRAM ("scalesim")."""
    t = Traffic()
    if op.is_gemm and timing_model == "scalesim":
        _scalesim_traffic(op, params, datapath, weight_bits, t)
        return t
    if op.is_gemm:
        _gemm_traffic(op, params, datapath, weight_bits, t,
                      mapping or rtl_mapping(op.m, op.n, op.k))
    else:
        kept_in = dict(op.kept_in)
        for access in op.reads:
            if access.tensor in kept_in:
                t.read(kept_in[access.tensor], nbytes(*access, datapath, params, weight_bits))
            else:
                _stored(t, *access, False, params, datapath, weight_bits)
    kept_out = dict(op.kept_out)
    for access in op.writes:
        if access.tensor in kept_out:
            t.write(kept_out[access.tensor], nbytes(*access, datapath, params, weight_bits))
        if access.tensor not in op.unstored:
            _stored(t, *access, True, params, datapath, weight_bits)
    return t


def compulsory_bytes(op: Op, params: HardwareParams, datapath: str = "int8",
                     weight_bits: int = 8) -> int:
    """DRAM bytes of `op` with every stored value read once and every result written once; the
    int32 tensor beyond the tensor buffer spills and comes back, as NITI's whole-tensor exponent
    needs (`perf.bounds`). Inputs kept on chip and outputs never stored (`perf.locality`) are
    not DRAM traffic of the op."""
    t = Traffic()
    kept_in = {tensor for tensor, _ in op.kept_in}
    for access in op.reads:
        if access.tensor in kept_in:
            continue
        if op.is_gemm:
            t.fetch("direct", nbytes(*access, datapath, params, weight_bits))
        else:
            _stored(t, *access, False, params, datapath, weight_bits)
    for access in op.writes:
        if access.tensor not in op.unstored:
            _stored(t, *access, True, params, datapath, weight_bits)
    return int(t.dram_read + t.dram_write)


def sram_energy_table(pj: dict, params: HardwareParams) -> dict[str, tuple[float, float]]:
    """(read, write) pJ per byte of each on-chip buffer, by its capacity."""
    return {buffer: sram_pj_per_byte(pj, buffer_kib(buffer, params)) for buffer in BUFFERS}


def op_costs(op: Op, t: Traffic, compute, params: HardwareParams, pj: dict,
             sram_pj: dict, datapath: str, stalls: bool = True) -> dict:
    """Cycles (compute, DRAM stall) and energy parts of one op moving `t`; ints, or arrays when
    `t` and `compute` hold one value per candidate mapping (the search)."""
    dram = t.dram_read + t.dram_write
    stall = np.maximum(0, np.ceil(dram / params.dram_bytes_per_cycle) - compute) if stalls else 0
    stall = stall.astype(np.int64) if isinstance(stall, np.ndarray) else int(stall)
    operand_bytes = value_bits(ACT, datapath, params, 8) // 8
    macs = op.macs
    sram = sum(b * sram_pj[name][0] for name, b in t.sram_read.items()) + \
        sum(b * sram_pj[name][1] for name, b in t.sram_write.items())
    parts = {
        "mac": macs * pj["int8_mac" if datapath == "int8" else "fp32_mac"],
        "alu": op.alu_ops * pj["int32_alu"],
        "register": macs * 2 * operand_bytes * pj["register_byte"],
        "sram": sram,
        "dram": t.dram_read * pj["dram_read_byte"] + t.dram_write * pj["dram_write_byte"],
    }
    return {"compute_cycles": compute, "stall_cycles": stall, "cycles": compute + stall,
            "energy_pj": sum(parts.values()), "parts": parts, "legal": t.legal}


def estimate(ops: list[Op], params: HardwareParams, energy: dict | None = None,
             timing_model: str = "rtl", datapath: str = "int8",
             weight_bits: int = 8, mapping: str = "rtl",
             objective: str = "cycles", fused: bool = False,
             keep_on_chip: bool = False) -> pd.DataFrame:
    """One row per op: cycles (compute, DRAM stall), utilisation, SRAM/DRAM bytes, energy (pJ), the
    GEMM's mapping and whether the RTL runs the row (`runs_on`: "rtl" or "analytical").

    `mapping` "rtl" costs every GEMM on the RTL's schedule; "best" searches each GEMM's mappings
    (`niti_hw.perf.search`) for the least `objective` ("cycles", "energy" or "edp") of its row;
    "best-rtl" searches only those the RTL datapath runs as a tile walk (`mapping.tile_walk`).
    `fused` folds ReLU and pooling into the passes before them (`niti_hw.perf.fusion`);
    `keep_on_chip` leaves a tensor on chip for the next op where it fits (`niti_hw.perf.locality`).
    Timing "scalesim" keeps the GEMM rows only (SCALE-Sim models nothing else), counts their bytes
    as SCALE-Sim does and no stalls (its bandwidth mode CALC has none).
    """
    if timing_model not in TIMINGS:
        raise ValueError(f"timing must be one of {TIMINGS}; got {timing_model!r}")
    if datapath not in DATAPATHS:
        raise ValueError(f"datapath must be one of {DATAPATHS}; got {datapath!r}")
    if mapping not in MAPPINGS:
        raise ValueError(f"mapping must be one of {MAPPINGS}; got {mapping!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}; got {objective!r}")
    if timing_model == "scalesim" and mapping != "rtl":
        raise ValueError("timing 'scalesim' costs SCALE-Sim's own schedule; the mapping search "
                         "needs timing 'rtl'")
    if timing_model == "scalesim" and keep_on_chip:
        raise ValueError("timing 'scalesim' moves every GEMM result through DRAM as SCALE-Sim "
                         "does; keeping tensors on chip needs timing 'rtl'")
    pj = check_energy(energy) if energy is not None else dict(DEFAULT_PJ)
    if fused:
        ops = fuse(ops, params)
    if datapath == "fp32":
        ops = fp32_ops(ops)
    if keep_on_chip:
        ops = locality.keep_on_chip(
            ops, params, lambda kind, count: nbytes(kind, count, datapath, params, weight_bits))
    if timing_model == "scalesim":
        ops = [op for op in ops if op.is_gemm]
    pes = params.rows * params.cols
    sram_pj = sram_energy_table(pj, params)
    stalls = timing_model != "scalesim"

    def price(op, candidate):
        t = op_traffic(op, params, timing_model, datapath, weight_bits, candidate)
        compute = gemm_cycles(op.m, op.n, op.k, params, timing_model, datapath, candidate)
        return op_costs(op, t, compute, params, pj, sram_pj, datapath, stalls)

    rows = []
    for op in ops:
        chosen = None
        if op.is_gemm and timing_model == "rtl":
            chosen = rtl_mapping(op.m, op.n, op.k)
            if mapping != "rtl":
                chosen = best_mapping(op, params, lambda c, op=op: price(op, c), objective,
                                      walks_only=mapping == "best-rtl")
        t = op_traffic(op, params, timing_model, datapath, weight_bits, chosen)
        compute = (gemm_cycles(op.m, op.n, op.k, params, timing_model, datapath, chosen)
                   if op.is_gemm else _stream_cycles(op, params))
        c = op_costs(op, t, int(compute), params, pj, sram_pj, datapath, stalls)
        cycles = c["cycles"]
        rows.append({
            "layer": op.layer, "phase": op.phase, "op": op.op, "m": op.m, "n": op.n, "k": op.k,
            "macs": op.macs, "elements": op.elements, "compute_cycles": c["compute_cycles"],
            "stall_cycles": c["stall_cycles"], "cycles": cycles,
            "utilisation": op.macs / (pes * cycles) if cycles else 0.0,
            "sram_read_bytes": int(sum(t.sram_read.values())),
            "sram_write_bytes": int(sum(t.sram_write.values())),
            "dram_read_bytes": int(t.dram_read), "dram_write_bytes": int(t.dram_write),
            "spill_bytes": t.spill, "energy_pj": float(c["energy_pj"]),
            "mapping": chosen.label if chosen else "",
            "runs_on": _runs_on(op, chosen, params),
            "compute_bound_cycles": compute_bound_cycles(op, params),
            "compulsory_bytes": compulsory_bytes(op, params, datapath, weight_bits),
            "capacity_bound_bytes": capacity_bound_bytes(op, params),
            **{f"energy_{name}_pj": float(value) for name, value in c["parts"].items()},
        })
    return pd.DataFrame(rows, columns=COLUMNS + ["mapping", "runs_on"] + list(BOUNDS)
                        + [f"energy_{n}_pj" for n in ENERGY_PARTS])


RTL_UNITS = ("bitwidth", "round", "weight_update", "loss_gradient")
"""Streaming ops the RTL has a unit for; the host does the others (ReLU, pooling, col2im)."""


def _runs_on(op: Op, chosen: Mapping | None, params: HardwareParams) -> str:
    if op.is_gemm:
        return "rtl" if chosen and runs_on_rtl(chosen, op.m, op.n, op.k, params) else "analytical"
    return "rtl" if op.op in RTL_UNITS else "analytical"


SUMMED = ["macs", "compute_cycles", "stall_cycles", "cycles", "sram_read_bytes",
          "sram_write_bytes", "dram_read_bytes", "dram_write_bytes", "spill_bytes", "energy_pj",
          *BOUNDS,
          *[f"energy_{n}_pj" for n in ENERGY_PARTS]]


def totals(table: pd.DataFrame, params: HardwareParams, clock_mhz: float,
           by: str | None = "phase", steps_per_epoch: int | None = None) -> pd.DataFrame:
    """Sums per `by` (phase, layer, op; None: one row) plus a 'step' row, with time (ms), average
    power and utilisation at `clock_mhz`; with `steps_per_epoch` also an 'epoch' row."""
    summed = table.groupby(by, sort=False)[SUMMED].sum() if by else pd.DataFrame()
    step = table[SUMMED].sum().to_frame("step").T
    parts = [summed, step]
    if steps_per_epoch:
        parts.append((step * steps_per_epoch).rename(index={"step": "epoch"}))
    out = pd.concat(parts)
    out.index.name = by or "total"
    pes = params.rows * params.cols
    out["utilisation"] = out["macs"] / (pes * out["cycles"]).where(out["cycles"] > 0)
    out["time_ms"] = out["cycles"] / (clock_mhz * 1e3)
    out["energy_uj"] = out["energy_pj"] / 1e6
    return out.fillna(0.0)
