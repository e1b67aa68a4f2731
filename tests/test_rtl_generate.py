"""Verilog generation: rtl/ is exactly what `niti-hw generate` writes for the default parameters."""

from pathlib import Path

import numpy as np
import pytest
pytest.importorskip("amaranth", reason="needs the rtl extra: pip install 'niti-hw[rtl]'")

from amaranth.hdl import Module  # noqa: E402
from amaranth.lib import memory, wiring  # noqa: E402
from amaranth.lib.wiring import In, Out  # noqa: E402

from niti_hw.cli import main  # noqa: E402
from niti_hw.golden import int8_matmul  # noqa: E402
from niti_hw.params import DEFAULT, HardwareParams  # noqa: E402
from niti_hw.perf.tiling import assemble, operand_beats, tile_grid  # noqa: E402
from niti_hw.rtl.scratchpad import BYTES  # noqa: E402
from niti_hw.rtl.shift_round import ShiftRound  # noqa: E402
from niti_hw.rtl.verilog import (UNIT_NAMES, _zero_inits_as_one_constant, generate,  # noqa: E402
                                 to_verilog)

RTL = Path(__file__).resolve().parent.parent / "rtl"


@pytest.mark.parametrize("unit", UNIT_NAMES)
def test_checked_in_verilog_is_up_to_date(unit):
    checked_in = (RTL / f"{unit}.v").read_text()
    assert checked_in == generate(unit, DEFAULT), \
        f"rtl/{unit}.v is stale: run `niti-hw generate --out rtl` and commit the result"


def test_generated_verilog_has_header_and_no_machine_paths():
    text = generate("shift_round_pseudo", DEFAULT)
    assert text.startswith("// niti-hw shift_round_pseudo: generated from HardwareParams")
    assert "DO NOT EDIT" in text.splitlines()[1]
    assert "module shift_round_pseudo" in text
    repo = str(Path(__file__).resolve().parent.parent)
    assert repo not in text and str(Path.home()) not in text and "src =" not in text


def test_cli_generate_writes_every_unit(tmp_path):
    assert main(["generate", "--out", str(tmp_path), "--rows", "2", "--cols", "4", "--lanes", "2"]) == 0
    assert sorted(p.stem for p in tmp_path.glob("*.v")) == sorted(UNIT_NAMES)
    assert '"rows": 2' in (tmp_path / "systolic_array.v").read_text().splitlines()[0]


def test_cli_generate_refuses_bad_parameters(tmp_path, capsys):
    assert main(["generate", "--out", str(tmp_path), "--lanes", "3"]) == 2
    assert "lanes must divide cols" in capsys.readouterr().err


def test_unknown_rounding_mode_is_refused():
    with pytest.raises(ValueError, match=r"mode must be one of \('nearest', 'stochastic', 'pseudo'\)"):
        ShiftRound(DEFAULT, "floor")


@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (5, 3, 7), (8, 9, 8), (17, 2, 3)])
def test_tile_protocol_round_trip(m, k, n):
    """The host side of the protocol: exact tile results placed back give A @ B."""
    p = HardwareParams(rows=4, cols=2, lanes=2, lfsr_lanes=16)
    rng = np.random.default_rng(m * 100 + n)
    a = rng.integers(-127, 128, (m, k)).astype(np.int8)
    b = rng.integers(-127, 128, (k, n)).astype(np.int8)
    beats = operand_beats(a, b, p)
    assert len(beats) == k * len(tile_grid(m, n, p))
    assert [beat["last"] for beat in beats[:k]] == [0] * (k - 1) + [1]
    rows = []
    for t, (i0, j0) in enumerate(tile_grid(m, n, p)):
        at = np.array([beat["a"] for beat in beats[t * k:(t + 1) * k]]).T
        bt = np.array([beat["b"] for beat in beats[t * k:(t + 1) * k]])
        rows += int8_matmul(at.astype(np.int8), bt.astype(np.int8)).tolist()
    assert assemble(rows, m, n, p).tolist() == int8_matmul(a, b).tolist()


def test_tile_protocol_refuses_too_long_k():
    p = HardwareParams(acc_bits=16)
    with pytest.raises(ValueError, match=r"K must be at most 2 for a 16-bit accumulator; got K=3"):
        operand_beats(np.zeros((1, 3), np.int8), np.zeros((3, 1), np.int8), p)


class _Memories(wiring.Component):
    """Two small memories: `zeros` (uniform init) and `ramp` (init 0, 1, 2, 3)."""

    def __init__(self):
        super().__init__({"addr": In(2), "zeros": Out(8), "ramp": Out(8)})

    def elaborate(self, platform):
        m = Module()
        for name, init in (("zeros", []), ("ramp", [0, 1, 2, 3])):
            m.submodules[name] = mem = memory.Memory(shape=8, depth=4, init=init)
            port = mem.read_port()
            m.d.comb += [port.addr.eq(self.addr), getattr(self, name).eq(port.data)]
        return m


def test_uniform_memory_init_is_a_loop_and_others_stay_word_by_word():
    text = to_verilog(_Memories(), "memories", DEFAULT)
    assert text.count("for (i = 0; i < 4; i = i + 1)") == 1 and "[i] = 8'h00;" in text
    assert all(f"[{n}] = 8'h0{n};" in text for n in range(4))  # the ramp, word by word
    assert "[1] = 8'h00;" not in text


def test_zero_inits_handed_to_yosys_as_one_constant_give_the_same_verilog():
    """The short cut for all-zero memory inits changes how Amaranth hands them to Yosys, not what
    comes out; the ramp (not all zero) goes word by word as before."""
    from amaranth.back import verilog as amaranth_verilog
    plain = amaranth_verilog.convert(_Memories(), name="memories", emit_src=False)
    with _zero_inits_as_one_constant():
        quick = amaranth_verilog.convert(_Memories(), name="memories", emit_src=False)
    assert quick == plain and "[3] = 8'h03;" in plain


def test_scratchpad_zero_init_is_compact():
    text = generate("datapath", DEFAULT)
    assert text.count(f"i < {DEFAULT.tensor_buffer_words // DEFAULT.cols};") == DEFAULT.cols * BYTES
    assert "bank0_byte0[1] =" not in text and "bank0_byte0[i] = 8'h00;" in text


def test_tensor_datapath_refuses_a_one_row_array():
    from niti_hw.rtl.datapath import Datapath

    with pytest.raises(ValueError, match=r"the tensor datapath needs at least 2 array rows .*got rows=1"):
        Datapath(HardwareParams(rows=1, cols=4, lanes=4))
    with pytest.raises(ValueError, match=r"needs cols to be a power of two .* got cols=6, try 4"):
        Datapath(HardwareParams(rows=2, cols=6, lanes=2))
