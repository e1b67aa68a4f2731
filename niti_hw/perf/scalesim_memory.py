"""SCALE-Sim 3.0.0's memory accounting of one GEMM layer, in words (its DETAILED_ACCESS_REPORT).

The cost model's `--timing scalesim` counts bytes with these formulas, as it counts cycles with
`timing.scalesim_gemm_cycles`; `sw/compare_scalesim.py` checks both against SCALE-Sim itself
(`sw/results/scalesim_bytes.csv`). What SCALE-Sim counts (bandwidth mode CALC, double-buffered
scratchpads, `scalesim/compute/systolic_compute_{os,ws,is}.py` and `scalesim/memory/`):

- SRAM reads: every operand value each fold feeds the array (A as "ifmap", B as "filter"); OS
  reads A once per column fold and B once per row fold, WS A once per column fold and B once, IS A
  once and B once per fold of M.
- SRAM writes: every result value each fold writes to the ofmap SRAM; WS and IS write partial sums
  once per fold of K (and never read them back); OS adds rows + cols per fold on top of its M * N
  (SCALE-Sim adds the padded fold's height and width where it means none).
- DRAM reads: an operand SRAM is half active, half prefetch; it fills with distinct addresses in
  demand order, and once `chunk_words` (50 sets of floor(words / 100)) distinct addresses are in,
  it starts over empty. A value is fetched again when its reuse falls in a later chunk. The demand
  order is fold by fold, column folds outer; each fold's values in the same order every time.
- DRAM writes: every result write (partial sums included) drains to DRAM; when more than half the
  ofmap SRAM fills and that half is a whole number of `cols`-wide lines, one partly filled line is
  drained with its cols - 1 empty slots counted as written.

Exact for GEMM topologies (distinct A and B values): equal to SCALE-Sim on all six counts of 258 of
282 layers in `sw/results/scalesim_bytes.csv` (GEMMs and convs, 8x8 to 32x32, OS/WS/IS, 64 and 1
KiB SRAMs). A convolution's A (im2col columns gathered from a smaller input) repeats values within
a pass; when the input does not fit one chunk, which repeats are fetched again depends on the im2col
order, and this count (each distinct input value once per pass) is a lower bound: on the other 24
layers (LeNet-5's convs with 1 KiB SRAMs, VGG16's conv2 and conv4) it is 0.09 to 0.94 of
SCALE-Sim's A fetches. SCALE-Sim also fetches a convolution's zero padding (its topology folds the
padding into the input); `a_values` counts what the caller gives (the cost model's lowering: the
bare input).
"""

from __future__ import annotations

from math import ceil

from niti_hw.params import HardwareParams
from niti_hw.perf import timing

QUANTITIES = ("ifmap_sram_reads", "filter_sram_reads", "ofmap_sram_writes", "ifmap_dram_reads",
              "filter_dram_reads", "ofmap_dram_writes")
"""The six counts of SCALE-Sim's DETAILED_ACCESS_REPORT, in its column order."""

SETS = 100
"""SCALE-Sim's operand SRAM is cut into 100 sets of floor(words / 100) addresses."""
ACTIVE_SETS = 50
"""Sets in the active half (active_buf_frac 0.5)."""


def sram_words(kib: int, word_bytes: int) -> int:
    return kib * 1024 // word_bytes


def chunk_words(kib: int, word_bytes: int) -> int | None:
    """Distinct addresses an operand SRAM gathers before it starts over; None: it never does
    (fewer than 100 words: SCALE-Sim's sets of floor(words / 100) = 0 addresses never fill)."""
    per_set = sram_words(kib, word_bytes) // SETS
    return ACTIVE_SETS * per_set if per_set else None


def pass_misses(blocks: list[tuple[int, int]], chunk: int | None) -> int:
    """DRAM fetches of a demand stream of disjoint blocks (L, R): a pass over L distinct values,
    repeated R times in the same order, through an SRAM that starts over every `chunk` distinct
    addresses. A block that fits the chunk (L < chunk) costs its L values once, plus the values
    that fell into the previous chunk if it crossed a boundary; a larger one costs every pass."""
    if chunk is None:
        return sum(length for length, _ in blocks)
    used = total = 0  # addresses in the current chunk, fetches so far
    for length, repeats in blocks:
        if length >= chunk:
            total += length * repeats
            used = (used + length * repeats) % chunk
        elif used + length < chunk:
            total += length
            used += length
        else:  # the first pass closes the chunk after `head` values; the second fetches them again
            head = chunk - used
            total += length + (head if repeats > 1 else 0)
            used = length if repeats > 1 else length - head
    return total


def ofmap_dram_writes(writes: int, kib: int, word_bytes: int, p: HardwareParams) -> int:
    """Result words SCALE-Sim drains to DRAM: every write, plus cols - 1 empty slots of one partly
    filled `cols`-wide line when the writes overflow a half SRAM of whole lines."""
    half = sram_words(kib, word_bytes) // 2
    padded = writes > half and half % p.cols == 0 and p.cols > 1
    return writes + (p.cols - 1 if padded else 0)


def scalesim_accesses(m: int, n: int, k: int, dataflow: str, p: HardwareParams,
                      a_values: int | None = None, word_bytes: int = 1) -> dict[str, int]:
    """SCALE-Sim 3.0.0's six access counts (QUANTITIES, in words) of C[M x N] = A[M x K] @ B[K x N]
    on `p`'s array and SRAM sizes. `a_values`: distinct values A is gathered from (default M * K;
    fewer for im2col columns, see the module docstring). `word_bytes`: SCALE-Sim fixes 1; a larger
    word shrinks the SRAMs in words (an extrapolation, not checked against SCALE-Sim)."""
    a_values = m * k if a_values is None else a_values
    row_folds, col_folds = ceil(m / p.rows), ceil(n / p.cols)
    k_folds = ceil(k / p.rows)
    ifmap_chunk = chunk_words(p.ifmap_sram_kib, word_bytes)
    filter_chunk = chunk_words(p.filter_sram_kib, word_bytes)
    if dataflow == "output_stationary":  # fold (column block, row block), column blocks outer
        sram = (m * k * col_folds, k * n * row_folds,
                m * n + timing.scalesim_folds(m, n, k, dataflow, p) * (p.rows + p.cols))
        widths = [min(p.cols, n - c) for c in range(0, n, p.cols)]
        ifmap = pass_misses([(a_values, col_folds)], ifmap_chunk)
        filt = pass_misses([(k * w, row_folds) for w in widths], filter_chunk)
    elif dataflow == "weight_stationary":  # B fold by fold; A's K folds once per column block
        sram = (m * k * col_folds, k * n, m * n * k_folds)
        ifmap = pass_misses([(a_values, col_folds)], ifmap_chunk)
        filt = k * n
    elif dataflow == "input_stationary":  # A fold by fold; B's K folds once per fold of M
        m_folds = ceil(m / p.cols)
        sram = (m * k, k * n * m_folds, m * n * k_folds)
        ifmap = pass_misses([(a_values, 1)], ifmap_chunk)
        filt = pass_misses([(k * n, m_folds)], filter_chunk)
    else:
        raise ValueError(f"dataflow must be one of {tuple(timing.SCALESIM_DATAFLOWS)}; "
                         f"got {dataflow!r}")
    ofmap = ofmap_dram_writes(sram[2] if dataflow != "output_stationary" else m * n,
                              p.ofmap_sram_kib, word_bytes, p)
    return dict(zip(QUANTITIES, (*sram, ifmap, filt, ofmap)))
