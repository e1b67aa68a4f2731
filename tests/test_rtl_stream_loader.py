"""Fast tier: the AXI4-Stream bank loader in `amaranth.sim`, against the frame rules of
niti_hw.stream_frames.

Random frames of every kind with random valid gaps and backpressure (hypothesis): each frame's
error code, every word of every bank, and the READ answers equal the host model's; each error
on its own with the banks prefilled: its code, nothing written from the bad beat on, nothing
outside the addressed range; the error register sticky; cycles at full rate equal
niti_hw.perf.timing's formulas. Banks are small (1 KiB) so every word is checked.
"""

import random
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from niti_hw.params import DEFAULT
from niti_hw.perf.timing import (STREAM_CHECK_CYCLES, STREAM_READ_LATENCY, STREAM_WRITE_LATENCY,
                                 stream_frame_cycles, stream_read_cycles)
from niti_hw.program.isa import Bank
from niti_hw.program.memory import bank_words
from niti_hw.stream_frames import (HEADER_BITS, HEADER_FIELDS, Error, Header, Op, bank_depths,
                                   beat_bits, from_bytes, header_beats, read_frame, to_bytes,
                                   write_frame)

pytest.importorskip("amaranth", reason="needs the rtl extra: pip install 'niti-hw[rtl]'")
pytest.importorskip("cocotb", reason="needs the rtl extra: pip install 'niti-hw[rtl]'")

from niti_hw.rtl.stream_loader import StreamLoader  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sim"))
from inprocess import AxisInProcess, axis_ready, run_testbench  # noqa: E402
from stream_host import (KIND_ERRORS, KINDS, Beat, LoaderModel, as_beats, full_keep,  # noqa: E402
                         header_of, kinds, random_frame)

SMALL = {lanes: DEFAULT.replace(lanes=lanes, ifmap_sram_kib=1, filter_sram_kib=1,
                                ofmap_sram_kib=1, tensor_buffer_words=64)
         for lanes in (2, 4, 8)}
"""16-, 32- and 64-bit beats: four, two and one header beats; banks of 512/256/128 words (the
tensor buffer 128/64/32)."""
WATCH = ("s_axis_tvalid", "s_axis_tready", "s_axis_tlast", "m_axis_tvalid", "m_axis_tready",
         "m_axis_tdata", "m_axis_tkeep", "m_axis_tlast", "error")
QUIET = 50  # idle cycles on the master stream that end a run
PATIENCE = 5000  # cycles a run's tail may take at most
SETTLE = STREAM_CHECK_CYCLES + 1  # cycles after a frame's last beat until its error is set


class Run:
    """One simulation: frames sent in order; after each (when `clear_each`) its error code is
    read and cleared. The trace has one tuple of WATCH per cycle; `banks` every word at the end."""

    def __init__(self, params, frames, gap=0.0, stall=0.0, seed=0, clear_each=True,
                 bench=None):
        self.params, self.dut, self.clear_each = params, StreamLoader(params), clear_each
        self.codes: list[int] = []
        self.banks: dict = {}
        rng = random.Random(seed)

        async def send(ctx):
            axis = AxisInProcess(ctx, self.dut, "stream loader", rng, gap)
            for frame in frames:
                await axis.send(frame)
                if clear_each:
                    for _ in range(SETTLE):
                        await ctx.tick()
                    self.codes.append(ctx.get(self.dut.error))
                    ctx.set(self.dut.error_clear, 1)
                    await ctx.tick()
                    ctx.set(self.dut.error_clear, 0)
            if bench is not None:
                await bench(ctx, self.dut)
            quiet = 0  # the last READ's answer, then QUIET cycles of room for an extra beat
            for _ in range(PATIENCE):
                _, _, valid = await ctx.tick().sample(self.dut.m_axis_tvalid)
                quiet = 0 if valid else quiet + 1
                if quiet == QUIET:
                    break
            self.error = ctx.get(self.dut.error)
            self.banks = {bank: [ctx.get(memory.data[n]) for n in range(memory.depth)]
                          for bank, memory in zip(Bank, self.dut.banks)}

        self.trace = [dict(zip(WATCH, cycle)) for cycle in
                      run_testbench(self.dut, send, watch=[getattr(self.dut, n) for n in WATCH],
                                    beside=[axis_ready(self.dut, rng, stall)])]

    def cycles(self, prefix: str) -> list[int]:
        """Cycles of the handshakes on `prefix`."""
        return [n for n, c in enumerate(self.trace) if c[f"{prefix}_tvalid"] and
                c[f"{prefix}_tready"]]

    def answers(self) -> list[list[int]]:
        """The master stream's beats, one list per TLAST; TKEEP all ones on every one."""
        frames, current = [], []
        for n in self.cycles("m_axis"):
            beat = self.trace[n]
            assert beat["m_axis_tkeep"] == full_keep(self.params), (n, beat)
            current.append(beat["m_axis_tdata"])
            if beat["m_axis_tlast"]:
                frames.append(current)
                current = []
        assert not current, f"answer beats without TLAST at the end: {current}"
        return frames


def check_against_model(run: Run, frames, expected_codes=None) -> LoaderModel:
    model = LoaderModel(run.params)
    codes = [model.frame(frame) for frame in frames]
    if expected_codes is not None:
        assert codes == expected_codes, "the host model disagrees with the frames' kinds"
    if run.clear_each:
        assert run.codes == codes
    else:
        assert run.error == model.error
    assert run.answers() == model.answers
    for bank in Bank:
        assert run.banks[bank] == model.banks[bank], bank.name
    return model


@settings(max_examples=50)
@given(lanes=st.sampled_from(sorted(SMALL)), seed=st.integers(0, 2**32 - 1),
       count=st.integers(1, 16), gap=st.sampled_from([0.0, 0.3]),
       stall=st.sampled_from([0.0, 0.5]), data=st.data())
def test_random_frames_match_the_model(lanes, seed, count, gap, stall, data):
    params = SMALL[lanes]
    picks = data.draw(st.lists(st.sampled_from(kinds(params)), min_size=count, max_size=count))
    rng = random.Random(seed)
    frames = [random_frame(params, kind, rng) for kind in picks]
    frames += [read_back(params, frame) for frame, kind in zip(frames, picks) if kind == "write"]
    picks += ["read"] * (len(frames) - len(picks))
    run = Run(params, frames, gap, stall, seed)
    check_against_model(run, frames, [KIND_ERRORS[kind] for kind in picks])


def read_back(params, frame: list[Beat]) -> list[Beat]:
    """A READ of the range a good WRITE frame wrote."""
    header = header_of(params, frame)
    return as_beats(params, read_frame(params, header.bank, header.base, header.length))


def prefill(params, rng) -> list[list[Beat]]:
    """WRITE frames that put random words in every word of every bank."""
    frames = []
    for bank, depth in bank_depths(params).items():
        words = [rng.getrandbits(beat_bits(params)) for _ in range(depth)]
        frames.append(as_beats(params, write_frame(params, bank, 0, words)))
    return frames


ERROR_KINDS = [kind for kind in KINDS if KIND_ERRORS[kind] != Error.NONE]


@pytest.mark.parametrize("kind, lanes", [(kind, lanes) for lanes in sorted(SMALL)
                                         for kind in ERROR_KINDS if kind in kinds(SMALL[lanes])])
def test_each_error_sets_its_code_and_writes_nothing_past_the_bad_beat(kind, lanes):
    """Banks prefilled; then the bad frame, a good WRITE and READ after it (the loader finds the
    next frame). The bad frame's code; a WRITE's words before its bad beat written and nothing
    else: every word outside that prefix equals the prefill."""
    params = SMALL[lanes]
    rng = random.Random(f"{kind}-{lanes}")
    for attempt in range(20):  # frames in which the bad beat has good beats before it
        bad = random_frame(params, kind, rng)
        if kind not in ("keep", "early_last", "late_last") or len(bad) > header_beats(params) + 1:
            break
    fill = prefill(params, rng)
    after = [as_beats(params, write_frame(params, Bank.ERR, 3, [5, 6])),
             as_beats(params, read_frame(params, Bank.ERR, 2, 3))]
    frames = fill + [bad] + after
    run = Run(params, frames, seed=attempt)
    model = check_against_model(run, frames)
    assert run.codes == [Error.NONE] * len(fill) + [KIND_ERRORS[kind], Error.NONE, Error.NONE]

    # Independently of the model: which words the bad frame may have written.
    before = LoaderModel(params)
    for frame in fill:
        before.frame(frame)
    header = header_of(params, bad)
    written, full, head = {}, full_keep(params), header_beats(params)
    if kind in ("keep", "early_last", "late_last") and all(b.keep == full for b in bad[:head]):
        for n, beat in enumerate(bad[head:]):
            if beat.keep != full or beat.last or n == header.length - 1:
                break
            written[header.base + n] = beat.data
        assert kind != "late_last" or len(written) == header.length - 1
    for bank in Bank:
        expected = list(before.banks[bank])
        if bank == header.bank:
            for addr, word in written.items():
                expected[addr] = word
        if bank == Bank.ERR:
            expected[3:5] = [5, 6]
        assert run.banks[bank] == expected, bank.name
    assert model.answers[-1] == run.banks[Bank.ERR][2:5]


@pytest.mark.parametrize("lanes", [2, 8])
def test_range_check_at_every_boundary(lanes):
    """Every bank: the last word, the whole bank and one word past either end; a base or length
    in range but for one high bit, each bit of the 24-bit fields above the address: RANGE, and
    nothing written (the words outside stay as the prefill left them)."""
    params = SMALL[lanes]
    rng = random.Random(lanes)
    frames, expected = prefill(params, rng), []
    for bank, depth in bank_depths(params).items():
        cases = [(depth - 1, 1), (0, depth), (depth, 1), (0, depth + 1), (depth - 1, 2)]
        for bit in range(depth.bit_length(), dict(HEADER_FIELDS)["base"]):
            cases += [((1 << bit) + depth - 1, 1), (0, (1 << bit) + 1)]
        for base, length in cases:
            good = base + length <= depth
            words = [rng.getrandbits(beat_bits(params)) for _ in range(length if good else 1)]
            frames.append(as_beats(params, Header(Op.WRITE, bank, base, length).beats(params)
                                   + words))
            expected.append(Error.NONE if good else Error.RANGE)
    run = Run(params, frames)
    check_against_model(run, frames)
    assert run.codes[-len(expected):] == expected


def test_the_error_is_sticky_until_cleared():
    """The first error stays through later bad and good frames; a clear empties it; a clear in
    the very cycle of a new error keeps the new one."""
    params = SMALL[8]
    bad_bank = as_beats(params, Header(Op.WRITE, 9, 0, 1).beats(params) + [1])
    bad_op = as_beats(params, Header(7, 0, 0, 1).beats(params))
    good = as_beats(params, write_frame(params, Bank.ACT, 0, [1, 2]))
    seen = {}

    async def bench(ctx, dut):
        for _ in range(SETTLE):
            await ctx.tick()
        seen["first"] = ctx.get(dut.error)
        ctx.set(dut.error_clear, 1)
        await ctx.tick()
        ctx.set(dut.error_clear, 0)
        seen["cleared"] = ctx.get(dut.error)
        axis = AxisInProcess(ctx, dut, "stream loader", random.Random(0))
        await axis.send(bad_bank)
        for _ in range(SETTLE):
            await ctx.tick()
        seen["bank"] = ctx.get(dut.error)
        await axis.send(bad_op)  # the op is refused in the last check cycle: clear right then
        for _ in range(STREAM_CHECK_CYCLES - 1):
            await ctx.tick()
        ctx.set(dut.error_clear, 1)
        await ctx.tick()
        ctx.set(dut.error_clear, 0)
        seen["op"] = ctx.get(dut.error)

    run = Run(params, [bad_bank, bad_op, good, bad_op], clear_each=False, bench=bench)
    assert seen == {"first": Error.BANK, "cleared": Error.NONE, "bank": Error.BANK,
                    "op": Error.OP}
    assert run.error == Error.OP
    assert run.banks[Bank.ACT][:3] == [1, 2, 0]


@pytest.mark.parametrize("lanes", sorted(SMALL))
def test_cycles_at_full_rate_equal_the_timing_model(lanes):
    """Frames back to back, no valid gap, the master stream always ready: each frame's first beat
    `stream_frame_cycles` after the previous one's, one payload beat per cycle, each READ's
    answer `STREAM_READ_LATENCY` after its header and `stream_read_cycles` long."""
    params = SMALL[lanes]
    rng = random.Random(lanes)
    plan = [(Op.WRITE, Bank.ACT, 0, 40), (Op.WRITE, Bank.ACC, 7, 1), (Op.READ, Bank.ACT, 0, 40),
            (Op.WRITE, Bank.ACT, 39, 2), (Op.READ, Bank.ACT, 38, 3), (Op.READ, Bank.ACC, 7, 1),
            (Op.WRITE, Bank.WEIGHT, 0, 5), (Op.WRITE, Bank.ERR, 11, 17)]
    frames = []
    for op, bank, base, length in plan:
        words = [rng.getrandbits(beat_bits(params)) for _ in range(length)]
        frames.append(as_beats(params, write_frame(params, bank, base, words) if op == Op.WRITE
                               else read_frame(params, bank, base, length)))
    run = Run(params, frames, clear_each=False)
    heads = header_beats(params)
    taken = run.cycles("s_axis")
    assert len(taken) == sum(len(frame) for frame in frames)
    firsts = [sum(len(frame) for frame in frames[:n]) for n in range(len(frames))]
    starts = [taken[n] for n in firsts]
    for n, (op, _, _, length) in enumerate(plan[:-1]):
        assert starts[n + 1] - starts[n] == stream_frame_cycles(length, heads), (n, op)
    for start, frame in zip(firsts, frames):  # the header, the check, the payload
        cycles = taken[start:start + len(frame)]
        first = cycles[0]
        payload = first + heads + STREAM_CHECK_CYCLES
        assert cycles == list(range(first, first + heads)) + \
            list(range(payload, payload + len(frame) - heads))
    answered = iter(run.cycles("m_axis"))
    for n, (op, _, _, length) in enumerate(plan):
        if op == Op.READ:
            out = [next(answered) for _ in range(length)]
            assert out == list(range(out[0], out[0] + length))
            assert out[0] - taken[firsts[n] + heads - 1] == STREAM_READ_LATENCY
            assert out[-1] - starts[n] + 1 == stream_read_cycles(length, heads)
    assert next(answered, None) is None
    check_against_model(run, frames)


def test_a_payload_beat_is_in_its_bank_after_the_write_latency():
    """Polled every cycle, the bank word changes exactly STREAM_WRITE_LATENCY cycles after the
    payload beat's handshake (a READ issued then reads it)."""
    params = SMALL[8]
    frame = as_beats(params, write_frame(params, Bank.WEIGHT, 5, [0xABCD]))
    seen = []

    async def bench(ctx, dut):
        axis = AxisInProcess(ctx, dut, "stream loader", random.Random(0))
        await axis.send(frame)  # returns in the cycle after the payload's handshake
        for _ in range(4):
            seen.append(ctx.get(dut.banks[Bank.WEIGHT].data[5]))
            await ctx.tick()

    Run(params, [], bench=bench)
    assert seen.index(0xABCD) + 1 == STREAM_WRITE_LATENCY and seen[-1] == 0xABCD


def test_banks_are_the_compilers_banks_in_beats():
    for params in (DEFAULT, *SMALL.values()):
        depths = bank_depths(params)
        words = bank_words(params)
        assert list(depths) == list(Bank)
        for bank in Bank:
            value_bytes = 4 if bank == Bank.ACC else 1
            assert depths[bank] * params.lanes == words[bank] * value_bytes
    assert beat_bits(DEFAULT) == 64 and header_beats(DEFAULT) == 1
    assert bank_depths(DEFAULT) == {bank: 8192 for bank in Bank}
    assert header_beats(SMALL[2]) == HEADER_BITS // 16


def test_the_packer_round_trips_and_refuses_what_the_loader_would_flag():
    params = SMALL[4]
    header = Header(Op.WRITE, 2, 0x123456, 0xABCDEF)
    assert Header.decode(header.encode()) == header
    assert header.encode() == 0xABCDEF_123456_02_01
    assert header.beats(params) == [0x34560201, 0xABCDEF12]
    frame = write_frame(params, Bank.ACC, 62, [1, 0xFFFFFFFF])
    assert from_bytes(params, to_bytes(params, frame)) == frame
    assert to_bytes(params, frame)[:2] == bytes([Op.WRITE, Bank.ACC])
    with pytest.raises(ValueError, match="not in the ACC bank's 64 beats"):
        write_frame(params, Bank.ACC, 63, [1, 2])
    with pytest.raises(ValueError, match="unknown bank 4"):
        read_frame(params, 4, 0, 1)
    with pytest.raises(ValueError, match="length >= 1"):
        read_frame(params, Bank.ACT, 0, 0)
    with pytest.raises(ValueError, match="does not fit the 32-bit beat"):
        write_frame(params, Bank.ACT, 0, [1 << 32])
    with pytest.raises(ValueError, match="field base = 16777216 does not fit its 24 bits"):
        Header(Op.READ, 0, 1 << 24, 1)
    with pytest.raises(ValueError, match="not whole beats"):
        from_bytes(params, b"abc")


def test_every_error_has_a_frame_kind():
    # BUSY is the core top's (a running core), tests/test_rtl_core_top.py
    assert set(KIND_ERRORS.values()) == set(Error) - {Error.BUSY}
    assert set(KIND_ERRORS) == set(KINDS)


def test_the_readme_tables_follow_stream_frames_and_the_timing():
    text = " ".join((Path(__file__).resolve().parent.parent / "rtl" / "README.md").read_text()
                    .split())
    for error in Error:
        if error != Error.NONE:
            assert f"| {error.value} | {error.name} |" in text, error
    lsb = 0
    for name, bits in HEADER_FIELDS:
        assert f"| {lsb + bits - 1}:{lsb} | {name} |" in text, name
        lsb += bits
    assert ", ".join(f"{op.value} {op.name}" for op in Op) in text
    assert ", ".join(f"{bank.value} {bank.name}" for bank in Bank) in text
    assert f"in its bank {STREAM_WRITE_LATENCY} cycles after its handshake" in text
    assert f"first word is valid {STREAM_READ_LATENCY} cycles after" in text
    assert f"answer starts {STREAM_READ_LATENCY} cycles after" in text
    assert f"`header_beats + {STREAM_CHECK_CYCLES} + n`" in text
