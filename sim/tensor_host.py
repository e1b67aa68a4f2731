"""Host side of the tensor datapath (and the weight-update unit) for cocotb benches.

One tensor at a time: a cfg beat, the GEMM's operand beats, the rounded tensor back in row-major
order. Every wait is bounded (a missing beat fails naming the unit and the count seen) and every
tensor ends with a drain window in which no further beat may arrive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from harness import StreamDriver, StreamMonitor, send_and_collect

from niti_hw.perf.tiling import ROW_MAJOR, TileWalk, operand_beats
from niti_hw.perf.timing import replay_beats, tensor_cycles
from niti_hw.rtl.datapath import RULE_NARROW, status_layout, tensor_cfg_layout
from niti_hw.rtl.layouts import operand_layout, round_out_layout
from niti_hw.rtl.update_unit import update_in_layout, update_out_layout

PATIENCE = 400
"""Cycles without a transfer before a stream is declared stuck; the output of a tensor waits for
its whole GEMM first, so `TensorHost` raises it per tensor to twice the model's cycles."""
DRAIN = 40
"""Cycles watched for an extra beat after a tensor's last expected one: longer than any pipeline."""


@dataclass
class TensorResult:
    values: np.ndarray  # int8 results, m x n
    k: int  # the shift carried by every beat
    status: object  # status_layout view: refused, no_update, b, k
    cfg_at: int  # cycle the cfg beat was accepted
    first_operand_at: int
    last_operand_at: int
    last_out_at: int


class TensorHost:
    """Drives `cfg`/`i` and collects `o` of a tensor Datapath (or of the TrainingCore)."""

    def __init__(self, dut, params, rng, gap: float = 0.0, stall: float = 0.0, unit="datapath"):
        self.dut, self.p, self.unit = dut, params, unit
        self.cfg = StreamDriver(dut, "cfg", tensor_cfg_layout(), rng, unit=unit, patience=PATIENCE)
        self.ops = StreamDriver(dut, "i", operand_layout(params), rng, gap=gap, unit=unit,
                                patience=PATIENCE)
        self.out = StreamMonitor(dut, "o", round_out_layout(params), rng, stall=stall, unit=unit,
                                 patience=PATIENCE)

    def status(self):
        return status_layout().from_bits(self.dut.status.value.to_unsigned())

    async def configure(self, m: int, n: int, rule: int, m_u: int,
                        walk: TileWalk = ROW_MAJOR) -> None:
        await self.cfg.send([{"m": m, "n": n, "rule": rule, "m_u": m_u, "band": walk.band,
                              "block": walk.block}])

    async def gemm(self, a: np.ndarray, b: np.ndarray, rule: int = RULE_NARROW,
                   m_u: int = 8, walk: TileWalk = ROW_MAJOR) -> TensorResult:
        """C = a @ b on the datapath, tiles in `walk` order, narrowed by `rule` (RULE_NARROW or
        RULE_GRADIENT with m_u)."""
        p = self.p
        m, n = a.shape[0], b.shape[1]
        beats = operand_beats(a, b, p, walk)
        before, sent_before = len(self.out.beats), len(self.ops.accepted_at)
        count = replay_beats(m, n, p)
        self.out.patience = PATIENCE + 2 * tensor_cycles(m, n, a.shape[1], p)
        await self.configure(m, n, rule, m_u, walk)
        await send_and_collect(self.ops, beats, self.out, before + count, DRAIN)
        out = self.out.beats[before:]
        values = [int(beat.data[lane]) for beat in out for lane in range(p.lanes)
                  if (int(beat.keep) >> lane) & 1]
        shifts = {int(beat.k) for beat in out}
        if len(shifts) != 1:
            raise AssertionError(f"{self.unit}: one tensor carried several shifts {sorted(shifts)}")
        lasts = [int(beat.last) for beat in out]
        if lasts != [0] * (count - 1) + [1]:
            raise AssertionError(f"{self.unit}: `last` pattern {lasts}, expected on beat {count} only")
        if len(values) != m * n:
            raise AssertionError(f"{self.unit}: {len(values)} values flagged `keep`, expected {m * n}")
        accepted = self.ops.accepted_at[sent_before:]
        return TensorResult(np.array(values).reshape(m, n), shifts.pop(), self.status(),
                            self.cfg.accepted_at[-1], accepted[0], accepted[-1],
                            self.out.received_at[-1])


class UpdateHost:
    """Drives `<prefix>i` and collects `<prefix>o` of a WeightUpdate (prefix "u_" in the core)."""

    def __init__(self, dut, params, weight_bits: int, rng, gap=0.0, stall=0.0, prefix="",
                 unit="update_unit"):
        self.p, self.unit = params, unit
        self.driver = StreamDriver(dut, f"{prefix}i", update_in_layout(params, weight_bits), rng,
                                   gap, unit=unit, patience=PATIENCE)
        self.monitor = StreamMonitor(dut, f"{prefix}o", update_out_layout(params, weight_bits), rng,
                                     stall, unit=unit, patience=PATIENCE)

    async def update(self, w: np.ndarray, g: np.ndarray):
        """(W', q, first beat accepted, last beat out) for weights `w` and int8 gradients `g`."""
        L = self.p.lanes
        size = w.size
        flat_w = np.zeros(-(-size // L) * L, dtype=np.int64)
        flat_g = np.zeros_like(flat_w)
        flat_w[:size], flat_g[:size] = w.reshape(-1), g.reshape(-1)
        beats = [{"w": flat_w[i:i + L].tolist(), "g": flat_g[i:i + L].tolist(),
                  "last": int(i + L >= size)} for i in range(0, size, L)]
        before, sent_before = len(self.monitor.beats), len(self.driver.accepted_at)
        await send_and_collect(self.driver, beats, self.monitor, before + len(beats), DRAIN)
        out = self.monitor.beats[before:]
        lasts = [int(beat.last) for beat in out]
        if lasts != [0] * (len(beats) - 1) + [1]:
            raise AssertionError(f"{self.unit}: `last` pattern {lasts}, expected on the final beat")
        new_w = np.array([int(beat.w[n]) for beat in out for n in range(L)])[:size]
        q = np.array([int(beat.q[n]) for beat in out for n in range(L)])[:size]
        return (new_w.reshape(w.shape), q.reshape(w.shape), self.driver.accepted_at[sent_before],
                self.monitor.received_at[-1])
