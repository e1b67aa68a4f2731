"""The tensor datapath's drain side: where each row the array drains lands in the whole tensor, as
tiles come in the cfg's `niti_hw.perf.tiling.TileWalk`, and the row's write into the scratchpad and
the bitwidth detector.

Part of `niti_hw.rtl.datapath.Datapath`'s module, not a component of its own: its registers sit
beside the array's drain and the moves read each other's registers, so a component boundary would
only add ports (the first split that tried one lost Fmax). Timing: a row is written
`ROW_WRITE_LATENCY` cycles after the array drains it, one row per cycle.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal

from niti_hw.perf.timing import ROW_WRITE_LATENCY, TENSOR_DIM_BITS
from niti_hw.rtl.target import LOCAL


class DrainWalk:
    """Drain side: the place of each drained row in the tensor, registered with the row, as the
    tiles come in the cfg's walk: across a column block, down the band's tile rows, to the next
    column block, to the next band. Tile, block and band ends are read from what is left (a compare
    with a constant, registered beside the count) and every start element is kept in its own
    register, so no adder feeds a compare."""

    def __init__(self, m: Module, cfg, array, pad, detector, cols: int, rows: int):
        dim = TENSOR_DIM_BITS
        R, C = rows, cols
        # the tile's first row, the drained row
        i0 = Signal(dim)
        row_i = Signal(dim)
        # i0 * n, tile, row
        block_e = Signal(2 * dim)
        tile_e = Signal(2 * dim)
        row_e = Signal(2 * dim)
        cb_e = Signal(2 * dim)  # the column block's first element in this tile row
        # rows and columns of the tensor from this tile on
        m_left = Signal(dim)
        n_left = Signal(dim)
        # n_left <= C, m_left <= R, registered beside them
        last_col = Signal()
        last_row = Signal()
        # At the band's first tile row, and at the column block's first tile column:
        band_i0 = Signal(dim)
        band_m_left = Signal(dim)
        band_last_row = Signal()
        # band_i0 * n, the block's top-left
        band_e = Signal(2 * dim)
        top_e = Signal(2 * dim)
        cb_n_left = Signal(dim)
        cb_last_col = Signal()
        # Tile columns left in the block and tile rows left in the band, minus one, counted down
        # from the cfg's block - 1 and band - 1 (0, the whole tensor, wraps to a count no tensor
        # of fewer than 2**dim rows or columns reaches); `*_end` marks the last.
        tiles_left = Signal(dim)
        rows_left = Signal(dim)
        block_end = Signal()
        band_end = Signal()
        # What a move would load, registered every cycle from the place it moves from: a tile
        # drains `rows` >= 2 rows, so the place is at least a cycle old when the next move reads
        # these, and no adder or compare sits before the moves' muxes.
        # n_left - C <= C, m_left - R <= R
        col_then_last = Signal()
        row_then_last = Signal()
        # tiles_left == 1, rows_left == 1
        block_then_ends = Signal()
        band_then_ends = Signal()
        # tile_e + C, block_e + rows * n
        right_e = Signal(2 * dim)
        down_e = Signal(2 * dim)
        # cb_e + rows * n, the next block
        down_cb_e = Signal(2 * dim)
        next_top_e = Signal(2 * dim)
        # i0 + R, m - R, n - C
        i0_down = Signal(dim)
        m_down = Signal(dim)
        n_right = Signal(dim)
        tiles_dec = Signal(dim)
        rows_dec = Signal(dim)
        m.d.sync += [col_then_last.eq(n_left <= 2 * C), row_then_last.eq(m_left <= 2 * R),
                     block_then_ends.eq(tiles_left == 1), band_then_ends.eq(rows_left == 1),
                     right_e.eq(tile_e + C), down_e.eq(block_e + cfg.block_step),
                     down_cb_e.eq(cb_e + cfg.block_step), next_top_e.eq(top_e + cfg.block_elems),
                     i0_down.eq(i0 + R), m_down.eq(m_left - R), n_right.eq(n_left - C),
                     tiles_dec.eq(tiles_left - 1), rows_dec.eq(rows_left - 1)]
        w_row = Signal.like(array.o.p.c, reset_less=True)
        w_valid = Signal()
        w_last = Signal()
        w_e0 = Signal(2 * dim, reset_less=True)
        w_count = Signal(range(C + 1), reset_less=True)
        m.d.comb += array.o.ready.eq(1)

        # ROW_WRITE_LATENCY - 1 plain registers between the array's output and the control below
        # (the array and the scratchpad sit far apart on the die), then the w_ registers. The
        # row's flags travel twice, one copy for the w_ registers and one for the tile counters,
        # so each can be placed beside what it drives.
        def drained(value, name, reset_less=False, attrs=None):
            for stage in range(ROW_WRITE_LATENCY - 1):
                reg = Signal.like(value, name=f"{name}{stage}", reset_less=reset_less,
                                  attrs=attrs or {})
                m.d.sync += reg.eq(value)
                value = reg
            return value

        row_data = drained(array.o.p.c, "drain_row", reset_less=True)
        row_valid = drained(array.o.valid, "drain_valid", attrs=LOCAL)
        row_last = drained(array.o.p.last, "drain_last", attrs=LOCAL)
        tile_valid = drained(array.o.valid, "tile_valid", attrs=LOCAL)
        tile_last = drained(array.o.p.last, "tile_last", attrs=LOCAL)
        m.d.sync += [  # every cycle, read only beside w_valid: the row's valid is no clock enable
            w_valid.eq(row_valid),
            w_row.eq(row_data),
            w_e0.eq(row_e),
            w_count.eq(Mux(row_i < cfg.m, Mux(last_col, n_left, C), 0)),
            w_last.eq(row_last & last_col & last_row),  # the walk's last tile is the corner one
        ]

        def next_tile_row(n_from, last_col_from):  # the next tile row, at column `n_from` left
            m.d.sync += [i0.eq(i0_down), row_i.eq(i0_down), m_left.eq(m_down),
                         last_row.eq(row_then_last), block_e.eq(down_e),
                         n_left.eq(n_from), last_col.eq(last_col_from),
                         tiles_left.eq(cfg.block_m1), block_end.eq(cfg.block_one)]

        with m.If(tile_valid):
            with m.If(~tile_last):
                m.d.sync += [row_i.eq(row_i + 1), row_e.eq(row_e + cfg.n)]
            with m.Elif(~(last_col | block_end)):  # next tile of the block's tile row
                m.d.sync += [row_i.eq(i0), n_left.eq(n_right), last_col.eq(col_then_last),
                             tile_e.eq(right_e), row_e.eq(right_e),
                             tiles_left.eq(tiles_dec), block_end.eq(block_then_ends)]
            with m.Elif(~(last_row | band_end)):  # the block's next tile row in this band
                next_tile_row(cb_n_left, cb_last_col)
                m.d.sync += [cb_e.eq(down_cb_e), tile_e.eq(down_cb_e), row_e.eq(down_cb_e),
                             rows_left.eq(rows_dec), band_end.eq(band_then_ends)]
            with m.Elif(~last_col):  # the next column block, from the band's first tile row
                m.d.sync += [i0.eq(band_i0), row_i.eq(band_i0), m_left.eq(band_m_left),
                             last_row.eq(band_last_row), block_e.eq(band_e),
                             n_left.eq(n_right), last_col.eq(col_then_last),
                             cb_n_left.eq(n_right), cb_last_col.eq(col_then_last),
                             top_e.eq(next_top_e), cb_e.eq(next_top_e),
                             tile_e.eq(next_top_e), row_e.eq(next_top_e),
                             tiles_left.eq(cfg.block_m1), block_end.eq(cfg.block_one),
                             rows_left.eq(cfg.band_m1), band_end.eq(cfg.band_one)]
            with m.Else():  # the next band, from the first column
                next_tile_row(cfg.n, cfg.n_fits)
                m.d.sync += [band_i0.eq(i0_down), band_m_left.eq(m_down),
                             band_last_row.eq(row_then_last), band_e.eq(down_e),
                             cb_n_left.eq(cfg.n), cb_last_col.eq(cfg.n_fits),
                             top_e.eq(down_e), cb_e.eq(down_e), tile_e.eq(down_e), row_e.eq(down_e),
                             rows_left.eq(cfg.band_m1), band_end.eq(cfg.band_one)]
        m.d.comb += [
            pad.wr_en.eq(w_valid), pad.wr_e0.eq(w_e0), pad.wr_count.eq(w_count),
            pad.wr_row.eq(w_row),
            detector.i.valid.eq(w_valid), detector.i.p.last.eq(w_last), detector.o.ready.eq(1),
        ]
        for col in range(C):
            m.d.comb += detector.i.p.data[col].eq(w_row[col])

        # What the CHECK state loads: the walk at the tensor's top-left tile.
        self.start = [
            i0.eq(0), row_i.eq(0), block_e.eq(0), tile_e.eq(0), row_e.eq(0), cb_e.eq(0),
            m_left.eq(cfg.m), n_left.eq(cfg.n), last_row.eq(cfg.m_fits), last_col.eq(cfg.n_fits),
            band_i0.eq(0), band_m_left.eq(cfg.m), band_last_row.eq(cfg.m_fits), band_e.eq(0),
            top_e.eq(0), cb_n_left.eq(cfg.n), cb_last_col.eq(cfg.n_fits),
            tiles_left.eq(cfg.block_m1), block_end.eq(cfg.block_one),
            rows_left.eq(cfg.band_m1), band_end.eq(cfg.band_one),
        ]
