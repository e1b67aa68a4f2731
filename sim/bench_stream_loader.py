"""StreamLoader bench through cocotbext-axi's AxiStreamSource (s_axis) and AxiStreamSink (m_axis):
frames of niti_hw.stream_frames on the wire, against the host model of sim/stream_host.py.

random_frames: frames of every kind (good WRITE and READ, and each way of breaking a rule), bad
TKEEP included, with random TVALID gaps and TREADY backpressure; after each frame the error
register holds the first error since it was last cleared (after most frames); each READ's
answer, then every word of every bank read back, equals the model's; no beat follows the
expected ones. full_rate: WRITE and READ frames queued back to back, no gaps: each frame's first
beat `stream_frame_cycles` after the previous one's, each READ's answer `STREAM_READ_LATENCY`
after its header and one beat per cycle.
"""

from __future__ import annotations

import logging
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, SimTimeoutError, with_timeout
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource
from harness import BENCH_TIMEOUT, PERIOD_NS, Scoreboard, bench_int, bench_params, cycle, record
from stream_host import KIND_ERRORS, LoaderModel, as_beats, header_of, kinds, random_frame

from niti_hw.perf.timing import STREAM_CHECK_CYCLES, STREAM_READ_LATENCY, stream_frame_cycles
from niti_hw.program.isa import Bank
from niti_hw.stream_frames import (Op, bank_depths, beat_bits, from_bytes, header_beats,
                                   read_frame, to_bytes, write_frame)

PATIENCE = 20_000  # cycles one frame or answer may take before the bench fails
SETTLE = STREAM_CHECK_CYCLES + 1  # cycles after a frame's last beat until its error is set
DRAIN = 100  # cycles watched for an extra beat after the expected ones
CLEAR = 0.7  # chance that the error register is cleared after a frame (else it must stick)
UNIT = "stream loader"


class Watcher:
    """The cycle of every handshake on s_axis and m_axis."""

    def __init__(self, dut):
        self.dut = dut
        self.at: dict[str, list[int]] = {"s_axis": [], "m_axis": []}

    async def run(self) -> None:
        while True:
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            for prefix, times in self.at.items():
                if int(getattr(self.dut, f"{prefix}_tvalid").value) and \
                        int(getattr(self.dut, f"{prefix}_tready").value):
                    times.append(cycle())


async def setup(dut):
    """Clock, source, sink and watcher; reset for two cycles."""
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    dut.error_clear.value = 0
    dut.rst.value = 1
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
    for prefix in ("s_axis", "m_axis"):  # one log line per frame otherwise
        logging.getLogger(f"cocotb.{dut._name}.{prefix}").setLevel(logging.WARNING)
    watcher = Watcher(dut)
    cocotb.start_soon(watcher.run())
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    return source, sink, watcher


def axis_frame(params, beats) -> AxiStreamFrame:
    """The beats as cocotbext-axi's frame: little-endian bytes, TKEEP per byte."""
    keep = [beat.keep >> n & 1 for beat in beats for n in range(params.lanes)]
    return AxiStreamFrame(to_bytes(params, [beat.data for beat in beats]), tkeep=keep)


def pauses(rng: random.Random, chance: float):
    while True:
        yield rng.random() < chance


def pause(bus, rng: random.Random, chance: float) -> None:
    """Random pauses on a source (TVALID gaps) or a sink (TREADY low), or none."""
    bus.set_pause_generator(pauses(rng, chance) if chance else None)
    bus.pause = False  # a cleared generator leaves its last value


async def bounded(what: str, wait, cycles: int = PATIENCE):
    try:
        return await with_timeout(wait, cycles * PERIOD_NS, "ns")
    except SimTimeoutError:
        raise AssertionError(f"{UNIT}: {what}: nothing in {cycles} cycles") from None


async def answer(params, sink, what: str) -> list[int]:
    """The next frame on m_axis as beats; TKEEP all ones on every byte."""
    frame = await bounded(what, sink.recv(compact=False))
    assert all(frame.tkeep), f"{UNIT}: {what}: TKEEP not all ones: {frame.tkeep}"
    return from_bytes(params, bytes(frame.tdata))


async def drain(dut, sink) -> None:
    """DRAIN cycles with TREADY high in which no beat may be offered."""
    pause(sink, None, 0.0)
    for waited in range(DRAIN):
        await RisingEdge(dut.clk)
        await ReadOnly()
        if int(dut.m_axis_tvalid.value):
            raise AssertionError(f"{UNIT}: extra beat on m_axis {waited + 1} cycles after the "
                                 "expected ones")
    assert sink.empty() and not sink.active, f"{UNIT}: an extra frame on m_axis"


async def prefill(params, source, model, rng, chunk: int = 256) -> None:
    """Random words in every word of every bank (the banks keep their words from test to test),
    in the model too."""
    for bank, depth in bank_depths(params).items():
        for base in range(0, depth, chunk):
            words = [rng.getrandbits(beat_bits(params)) for _ in range(min(chunk, depth - base))]
            beats = as_beats(params, write_frame(params, bank, base, words))
            model.frame(beats)
            await source.send(axis_frame(params, beats))
    await bounded("the prefill", source.wait(), PATIENCE * 4)


async def read_back(params, source, sink, model, board, chunk: int = 256) -> None:
    """Every word of every bank through READ frames, against the model's banks."""
    for bank, depth in bank_depths(params).items():
        for base in range(0, depth, chunk):
            length = min(chunk, depth - base)
            await source.send(axis_frame(params, as_beats(params, read_frame(params, bank, base,
                                                                           length))))
            got = await answer(params, sink, f"{bank.name} words {base}..{base + length - 1}")
            board.compare_beats(f"{bank.name} bank from word {base}", got,
                                model.banks[bank][base:base + length])


@cocotb.test(**BENCH_TIMEOUT)
async def random_frames(dut):
    """Random frames of every kind with gaps and backpressure; codes, answers and banks."""
    params = bench_params()
    source, sink, _ = await setup(dut)
    rng = random.Random(bench_int("NITI_HW_SEED", 1))
    board = Scoreboard(f"{UNIT} random frames, lanes={params.lanes}", dut._log)
    model = LoaderModel(params)
    await prefill(params, source, model, rng)
    counts = {kind: 0 for kind in kinds(params)}
    for n in range(bench_int("NITI_HW_VECTORS", 200)):
        pause(source, rng, rng.choice([0.0, 0.3, 0.6]))
        pause(sink, rng, rng.choice([0.0, 0.5]))
        kind = rng.choice(list(counts))
        beats = random_frame(params, kind, rng)
        expected = model.frame(beats)
        board.compare(f"frame {n} ({kind}) is what its kind breaks", expected, KIND_ERRORS[kind])
        await source.send(axis_frame(params, beats))
        await bounded(f"frame {n} ({kind}) sent", source.wait())
        for _ in range(SETTLE):
            await RisingEdge(dut.clk)
        board.compare(f"frame {n} ({kind}) error code (the first since the last clear)",
                      int(dut.error.value), model.error)
        if rng.random() < CLEAR:
            dut.error_clear.value = 1
            await RisingEdge(dut.clk)
            dut.error_clear.value = 0
            model.clear()
        if kind == "read":
            got = await answer(params, sink, f"frame {n}'s answer")
            board.compare_beats(f"frame {n}'s answer", got, model.answers[-1])
        counts[kind] += 1
    pause(source, rng, 0.0)
    await read_back(params, source, sink, model, board)
    await drain(dut, sink)
    board.compare("error after the run", int(dut.error.value), model.error)
    record({"test": "random", **board.report(), "frames": counts})


@cocotb.test(**BENCH_TIMEOUT)
async def full_rate(dut):
    """Frames queued back to back, no gaps, m_axis always ready: cycles against the model."""
    params = bench_params()
    source, sink, watcher = await setup(dut)
    rng = random.Random(bench_int("NITI_HW_SEED", 1) + 1)
    board = Scoreboard(f"{UNIT} full rate, lanes={params.lanes}", dut._log)
    model = LoaderModel(params)
    await prefill(params, source, model, rng)
    heads = header_beats(params)
    plan = []
    for _ in range(bench_int("NITI_HW_FRAMES", 40)):
        bank = rng.choice(list(Bank))
        length = rng.randint(1, min(64, bank_depths(params)[bank]))
        base = rng.randrange(bank_depths(params)[bank] - length + 1)
        words = [rng.getrandbits(beat_bits(params)) for _ in range(length)]
        op = rng.choice([Op.WRITE, Op.READ])
        plan.append(as_beats(params, write_frame(params, bank, base, words) if op == Op.WRITE
                             else read_frame(params, bank, base, length)))
    first = {prefix: len(times) for prefix, times in watcher.at.items()}
    for beats in plan:
        model.frame(beats)
        source.send_nowait(axis_frame(params, beats))
    await bounded("the frames sent", source.wait(), PATIENCE * 4)
    answers = [await answer(params, sink, f"answer {n}") for n in range(len(model.answers))]
    await drain(dut, sink)
    board.compare_beats("answers", [word for got in answers for word in got],
                        [word for want in model.answers for word in want])

    taken, out = (iter(watcher.at[prefix][first[prefix]:]) for prefix in ("s_axis", "m_axis"))
    starts, reads = [], 0
    for n, beats in enumerate(plan):
        cycles = [next(taken) for _ in beats]
        starts.append(cycles[0])
        header = header_of(params, beats)
        if header.op == Op.READ:
            sent = [next(out) for _ in range(header.length)]
            board.compare(f"frame {n}: READ latency", sent[0] - cycles[heads - 1],
                          STREAM_READ_LATENCY)
            board.compare(f"frame {n}: one answer beat per cycle", sent,
                          list(range(sent[0], sent[0] + header.length)))
            reads += 1
        if n:
            previous = header_of(params, plan[n - 1])
            board.compare(f"frame {n - 1}: cycles", starts[n] - starts[n - 1],
                          stream_frame_cycles(previous.length, heads))
    board.compare("error after the run", int(dut.error.value), 0)
    record({"test": "full_rate", **board.report(), "frames": len(plan), "reads": reads,
            "cycles": watcher.at["s_axis"][-1] - starts[0] + 1})
