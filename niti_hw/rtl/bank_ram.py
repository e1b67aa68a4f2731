"""A bank's read copy on ECP5 block RAM with the RAM's own output register.

A bank row (`lanes` values of a whole number of bytes each) is cut into 4-byte columns, each a
DP16KD in 36-bit pseudo dual port mode (512 rows, port A writes with a byte enable per byte, port
B reads through both halves of the data pins), stacked `ceil(rows / 512)` deep. The read leaves
the RAM through its output register (REGMODE OUTREG): clock-to-out 0.96 ns where the RAM array's
is 5.83 ns (speed grade 6), so the bank select behind it has the rest of the clock period. Yosys
never maps a register into a DP16KD's output register, hence the instances.

The same counts as yosys's own mapping of the bank (PDPW16KD, 36 bits by 512); the stack's tile
is picked after the output registers, beside the bank select.
"""

from __future__ import annotations

from math import ceil

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Signal, Value

X36_DEPTH = 512
"""Rows of a DP16KD in 36-bit mode; the row address on AD13..AD5."""
X36_ADDR_LSB = 5
X36_BYTES = 4
"""Bytes of a 36-bit word: 9-bit slots, the ninth bit unused."""
HALF_PINS = 18
"""Data pins per port: a 36-bit word's low half on the A pins, its high half on the B pins."""


def fits_x36(bits: int) -> bool:
    """A value of whole bytes takes whole byte enables."""
    return bits % 8 == 0


def x36_read_copy(m: Module, name: str, bits: int, lanes: int, rows: int,
                  wr_addr: Value, wr_row: Value, wr_mask: Value, rd_addr: Value,
                  rd_en: Value) -> Value:
    """One bank's read copy: `wr_row` (lanes * bits) into row `wr_addr` where its lane is set in
    `wr_mask`; the row at `rd_addr` (read when `rd_en`) out of the RAMs' output registers two
    cycles later, held while `rd_en` is low. Returns the row (the stack's tile picked, no
    register after the pick)."""
    row_bytes = lanes * bits // 8
    columns, tiles = ceil(row_bytes / X36_BYTES), ceil(rows / X36_DEPTH)
    tile_bits = max(tiles - 1, 0).bit_length()
    wr_tile = wr_addr[X36_DEPTH.bit_length() - 1:] if tile_bits else Const(0, 1)
    tile_outputs = []
    for tile in range(tiles):
        written = wr_mask.any() & (wr_tile == tile)
        words = []
        for column in range(columns):
            byte_ids = [column * X36_BYTES + slot for slot in range(X36_BYTES)]
            data_in, enables = [], []
            for byte in byte_ids:
                present = byte < row_bytes
                data_in.append(Cat(wr_row[8 * byte:8 * byte + 8] if present else Const(0, 8),
                                   Const(0, 1)))
                enables.append(wr_mask[8 * byte // bits] if present else Const(0, 1))
            word = Signal(X36_BYTES * 9, name=f"{name}_t{tile}_c{column}_do")
            m.submodules[f"{name}_t{tile}_c{column}"] = _dp16kd_x36(
                Cat(*data_in), Cat(*enables), written, wr_addr, rd_addr, rd_en, word)
            words.append(Cat(*[word[9 * slot:9 * slot + 8] for slot in range(X36_BYTES)]))
        tile_outputs.append(Cat(*words)[:lanes * bits])
    if tiles == 1:
        return tile_outputs[0]
    read_tile = rd_addr[X36_DEPTH.bit_length() - 1:]
    picked = Signal(tile_bits, name=f"{name}_tile")  # the tile of the read in the RAM's latch
    held = Signal(tile_bits, name=f"{name}_tile_out")  # ... and in its output register
    with m.If(rd_en):
        m.d.sync += picked.eq(read_tile)
    m.d.sync += held.eq(picked)
    row = Signal(lanes * bits, name=f"{name}_row")
    with m.Switch(held):
        for tile, value in enumerate(tile_outputs):
            with m.Case(tile):
                m.d.comb += row.eq(value)
    return row


def _dp16kd_x36(data_in, enables, written, wr_addr, rd_addr, rd_en, data_out) -> Instance:
    """Port A writes (byte enables on ADA3..ADA0), port B reads; both output registers on, as a
    36-bit read leaves through the A and the B data pins."""
    ports = {}
    for n in range(14):
        bit = n - X36_ADDR_LSB
        in_row = 0 <= bit < X36_DEPTH.bit_length() - 1
        ports[f"i_ADA{n}"] = enables[n] if n < X36_BYTES else (
            wr_addr[bit] if in_row and bit < len(wr_addr) else Const(0, 1))
        ports[f"i_ADB{n}"] = rd_addr[bit] if in_row and bit < len(rd_addr) else Const(0, 1)
    for n in range(HALF_PINS):
        ports[f"i_DIA{n}"] = data_in[n]
        ports[f"i_DIB{n}"] = data_in[HALF_PINS + n]
        ports[f"o_DOA{n}"] = data_out[n]
        ports[f"o_DOB{n}"] = data_out[HALF_PINS + n]
    zero, one = Const(0, 1), Const(1, 1)
    return Instance(
        "DP16KD",
        p_DATA_WIDTH_A=36, p_DATA_WIDTH_B=36, p_REGMODE_A="OUTREG", p_REGMODE_B="OUTREG",
        p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC", p_CSDECODE_A="0b000",
        p_CSDECODE_B="0b000", p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL", p_GSR="DISABLED",
        i_CLKA=ClockSignal(), i_CEA=written, i_OCEA=one, i_WEA=one, i_RSTA=zero,
        i_CLKB=ClockSignal(), i_CEB=rd_en, i_OCEB=one, i_WEB=zero, i_RSTB=zero,
        **{f"i_CS{port}{n}": zero for port in "AB" for n in range(3)},
        **ports,
    )
