"""GEMM: C = A @ B (int8 x int8 -> int32) on the `SystolicArray`, operands gathered from the banks
by two `OperandWalk`s in any layout (row-major, transposed, im2col), C written row-major into the
int32 bank, as the reference machine's `_gemm` (golden `policy.matmul`)."""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib.wiring import In

from niti_hw.params import HardwareParams
from niti_hw.perf.timing import (BANK_READ_LATENCY, GEMM_BEAT_LATENCY, GEMM_DRAIN_LATENCY,
                                 gemm_beat_slots, gemm_row_writes)
from niti_hw.rtl.engine import Engine
from niti_hw.rtl.gemm_walk import ADDRESS, DIM_BITS, PERIOD_BITS, OperandWalk
from niti_hw.rtl.instruction import geometry_layout
from niti_hw.rtl.layouts import INT8, INT32
from niti_hw.rtl.systolic_array import SystolicArray

if GEMM_BEAT_LATENCY != 1 or GEMM_DRAIN_LATENCY != 2:
    raise RuntimeError("rtl/gemm_engine.py registers a beat once and a drained row twice (buffer, "
                       "rotation): perf.timing's GEMM_BEAT_LATENCY and GEMM_DRAIN_LATENCY must "
                       "say 1 and 2")


class GemmEngine(Engine):
    """GEMM: dst (M x N int32, row-major, at any word of its bank) = A (M x K) @ B (K x N), A and
    B int8 read by their layouts (`conv`: the geometry of im2col layouts), exactly.

    Gather: each cycle a word of A on read port 0 and one of B on port 1 (its lane picked
    `BANK_READ_LATENCY` later, 0 for a `zero` slot) shift into the beat registers; a beat (A's
    column, B's row) goes to the array every `gemm_beat_slots` cycles, K per tile. Drain: the
    array's rows land in a rows x cols buffer; each is rotated onto the `gemm_row_writes` bank
    rows it covers at its word offset and written on port 0, lanes past M or N masked off. Tiles
    start `gemm_tile_period` cycles apart, so a tile gathers while the previous one drains.

    Cycles from `start` to `done`: `niti_hw.perf.timing`'s `gemm_engine_cycles`.
    """

    def __init__(self, params: HardwareParams):
        super().__init__(params, conv=In(geometry_layout()))
        self.walks = {"a": OperandWalk(params, "a"), "b": OperandWalk(params, "b")}
        self.array = SystolicArray(params, backpressure=False)

    def elaborate(self, platform):
        p, op = self.params, self.op
        R, C, L = p.rows, p.cols, p.lanes
        slots, writes = gemm_beat_slots(p), gemm_row_writes(p)
        shift = L.bit_length() - 1
        m = Module()
        m.submodules.array = array = self.array
        period = Signal(PERIOD_BITS)
        gather = op.k * slots
        m.d.comb += period.eq(Mux(gather > R * writes, gather, R * writes))

        beat = {}
        for role, port, other in (("a", self.rd[0], "b"), ("b", self.rd[1], "a")):
            m.submodules[f"walk_{role}"] = walk = self.walks[role]
            own, across = (op.m, op.n) if role == "a" else (op.n, op.m)
            m.d.comb += [walk.start.eq(self.start), walk.layout.eq(op[f"{role}_layout"]),
                         walk.base.eq(op[f"{role}_base"]), walk.own.eq(own), walk.k.eq(op.k),
                         walk.other.eq(across), walk.period.eq(period), walk.conv.eq(self.conv)]
            m.d.comb += [port.en.eq(walk.o.valid & ~walk.o.zero), port.bank.eq(op[f"{role}_bank"]),
                         port.row.eq(walk.o.addr >> shift)]
            flags = Cat(walk.o.valid, walk.o.zero, walk.o.addr[:shift], walk.o.beat_last,
                        walk.o.tile_last)
            for stage in range(BANK_READ_LATENCY):
                later = Signal.like(flags, name=f"{role}_flags{stage}")
                m.d.sync += later.eq(flags)
                flags = later
            valid, zero, lane = flags[0], flags[1], flags[2:2 + shift]
            value = Signal(INT8, name=f"{role}_value")
            m.d.comb += value.eq(Mux(zero, 0, Array(port.data[n] for n in range(L))[lane][:8]))
            held = [Signal(INT8, name=f"{role}_slot{n}") for n in range(slots)]
            with m.If(valid):
                m.d.sync += [a.eq(b) for a, b in zip(held, held[1:] + [value])]
            beat[role] = held
            if role == "a":  # both walks run in step: A's flags time the beats
                beat_last, tile_last = flags[2 + shift], flags[3 + shift]
                beat_valid, beat_end = Signal(), Signal()
                m.d.sync += [beat_valid.eq(valid & beat_last), beat_end.eq(tile_last)]
        m.d.comb += [array.i.valid.eq(beat_valid), array.i.p.last.eq(beat_end),
                     array.o.ready.eq(1)]
        m.d.comb += [array.i.p.a[r].eq(beat["a"][r]) for r in range(R)]
        m.d.comb += [array.i.p.b[c].eq(beat["b"][c]) for c in range(C)]
        self._write_back(m, array, R, C, L, writes)
        return m

    def _write_back(self, m, array, R, C, L, writes):
        """Drained rows into a buffer; row r of a tile (element (i0 + r, j0) at word e) rotated by
        e % lanes onto bank rows e // lanes ..., one per cycle on write port 0."""
        op, port = self.op, self.wr[0]
        shift = L.bit_length() - 1
        buffer = [Signal(C * 32, name=f"drained{r}") for r in range(R)]
        drained = Signal(range(R))
        load_first = Signal()  # row 0 of a tile is in the buffer
        wide = [Signal(INT32, name=f"drain_c{c}") for c in range(C)]
        m.d.comb += [wide[c].eq(array.o.p.c[c]) for c in range(C)]
        with m.If(array.o.valid):
            with m.Switch(drained):
                for r in range(R):
                    with m.Case(r):
                        m.d.sync += buffer[r].eq(Cat(*wide))
            m.d.sync += drained.eq(Mux(array.o.p.last, 0, drained + 1))
        m.d.sync += load_first.eq(array.o.valid & (drained == 0))

        # The writer's place: the tile's first element, the next row's, the band's (i0, 0);
        # rows and columns left from this tile on.
        tile_addr = Signal(ADDRESS)
        row_addr = Signal(ADDRESS)
        band_addr = Signal(ADDRESS)
        m_left = Signal(DIM_BITS)
        n_left = Signal(DIM_BITS)
        final = Signal()  # the tile being written is the last
        active = Signal()
        row = Signal(range(R))
        row_after = Signal(range(R))  # row + 1 (mod R): the next row's buffer index, registered
        step = Signal(range(writes))
        rotated = Signal((C + L) * 32)
        kept = Signal(C + L)
        bank_row = Signal.like(port.row)
        row_ok = Signal()
        with m.If(self.start):
            m.d.sync += [tile_addr.eq(op.dst_base), band_addr.eq(op.dst_base),
                         m_left.eq(op.m), n_left.eq(op.n), active.eq(0)]

        row_done = active & (step == writes - 1)
        load_next = row_done & (row != R - 1)
        load = load_first | load_next
        which = Mux(load_first, 0, row_after)
        addr = Mux(load_first, tile_addr, row_addr)
        offset = addr[:shift] if shift else 0
        columns = Cat(*[n_left > c for c in range(C)])
        with m.If(load):
            m.d.sync += [rotated.eq(Array(buffer)[which] << (offset * 32)),
                         kept.eq(columns << offset), bank_row.eq(addr >> shift),
                         row_ok.eq(which < m_left), row_addr.eq(addr + op.n),
                         row.eq(which), row_after.eq(Mux(which == R - 1, 0, which + 1)),
                         step.eq(0), active.eq(1)]
            with m.If(which == R - 1):  # the tile's rows are placed: on to the next tile
                m.d.sync += final.eq((m_left <= R) & (n_left <= C))
                with m.If(n_left <= C):
                    band = band_addr + R * op.n
                    m.d.sync += [band_addr.eq(band), tile_addr.eq(band), n_left.eq(op.n),
                                 m_left.eq(m_left - R)]
                with m.Else():
                    m.d.sync += [tile_addr.eq(tile_addr + C), n_left.eq(n_left - C)]
        with m.Elif(active):
            m.d.sync += [rotated.eq(rotated >> (L * 32)), kept.eq(kept >> L),
                         bank_row.eq(bank_row + 1), step.eq(step + 1)]
            with m.If(row_done):
                m.d.sync += active.eq(0)
        mask = Signal(L)
        m.d.comb += mask.eq(kept[:L] & row_ok.replicate(L))
        m.d.comb += [port.en.eq(active & mask.any()), port.bank.eq(op.dst_bank),
                     port.row.eq(bank_row), port.mask.eq(mask)]
        m.d.comb += [port.data[n].eq(rotated[n * 32:(n + 1) * 32].as_signed()) for n in range(L)]
        m.d.sync += self.done.eq(row_done & (row == R - 1) & final)
