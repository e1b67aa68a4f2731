"""Benchmark: the forward GEMMs of `niti-hw estimate` beside ZigZag 3.9.1's best mapping.

ZigZag (KU Leuven's design-space explorer, PyPI `zigzag-dse`) runs in a Python of its own
(`NITI_HW_ZIGZAG=1 sw/setup.sh` makes `.venv-zigzag`), driven by sw/zigzag_driver.py through a
subprocess; the cost model runs in this process. Both get the forward convolutions and linear layers
of LeNet-5 (1x28x28, batch 64, 8x8 array) and VGG16 (3x32x32, batch 128, 16x16 array), output and
weight stationary, on the same hardware:

| niti-hw (`HardwareParams`, `energy.DEFAULT_PJ`) | ZigZag description written here |
|---|---|
| rows x cols int8 MACs, 0.3 pJ each (`int8_mac`) | operational array D1 = rows, D2 = cols, both systolic; `unit_energy` 0.3 |
| output stationary: M = N*OH*OW over rows, N = Cout over cols | spatial unrolling D1 = OX x OY x B, D2 = K |
| weight stationary: K = KH*KW*Cin over rows, N over cols | spatial unrolling D1 = C x FX x FY, D2 = K |
| each MAC moves 2 operand bytes through PE registers (`register_byte`) | `reg_I` (1 byte), `reg_W` (2: WS loads the next weight while one streams) per PE, `register_byte` per byte read or written |
| int32 accumulator in each PE, its add inside the MAC's 0.3 pJ; a result register it is copied to while the next tile accumulates (RTL) | `reg_O` of 2 int32 words per PE at 0 pJ |
| ifmap, filter, ofmap SRAMs (`*_sram_kib`) at the pJ per byte of their size (`cost.sram_energy_table`) | `ifmap_sram` (I), `filter_sram` (W), `ofmap_sram` (O) of those sizes and pJ |
| operand reads: rows A values / cycles A, cols B values, cols int32 results | ports of rows*8, cols*8 and cols*32 bits, reads and writes on ports of their own |
| DRAM `dram_bytes_per_cycle` for reads and writes together, 162.5 pJ/B | `dram`: one read-write port of 8*that bits, 162.5 pJ per byte |
| A fetched as the conv's input tensor (im2col on chip, padding on chip) | Conv layer with IX/IY the unpadded input and the padding declared |
| GEMM result int32 | operand precision O = O_final = 32 bits |

Energy per access is per byte in both: each ZigZag port has `bandwidth_min` 8 bits, so an access is
charged per byte moved, at the memory's pJ per byte times the port width / 8 per full-width word.

What cannot be made equal (sw/results/zigzag_notes.md explains each per-layer difference):
- no int32 tensor buffer in ZigZag: every result goes through the ofmap SRAM to DRAM (niti-hw keeps
  `tensor_buffer_words` results on chip and spills the rest);
- ZigZag unrolls loops, not the im2col GEMM: a layer whose loops do not fill the rows (LeNet conv1
  C*FX*FY = 25 on 8 rows in weight stationary) leaves PEs idle that niti-hw's flattened K uses;
- the searches differ: ZigZag (LOMA) orders the layer's loops, split into prime factors, and keeps
  each in the lowest memory it fits; niti-hw (`mapping="best"`, used where `estimate` takes it)
  blocks the GEMM's M, N, K and orders the three block loops;
- ZigZag charges a register for each write into it and each read out of it (niti-hw one byte per
  operand per MAC), and an SRAM for every byte written into it from DRAM as well as read out;
- capacity: ZigZag fills a memory up to its size and double-buffers only what takes half of it;
  niti-hw keeps a working set in half of each SRAM;
- timing: ZigZag's latency is the temporal loop count plus DRAM/SRAM port stalls, the first load,
  the last store and one systolic drain per layer; niti-hw adds fill and drain per tile (the RTL's)
  and stalls only on DRAM (bytes / bandwidth beyond the compute cycles).

    python sw/compare_zigzag.py [--zigzag-python .venv-zigzag/bin/python] [--models lenet5,vgg16]
    python sw/compare_zigzag.py --markdown   # the recorded CSV as the tables of zigzag_notes.md
    python sw/compare_zigzag.py --recompute  # the cost model's columns again, ZigZag's as recorded
    python sw/compare_zigzag.py --models vgg16 --dataflows os --objectives energy \
        --layers conv9 --lpf-limit 8 --out /tmp/lpf8   # a larger LOMA search on one layer

Writes sw/results/zigzag_forward.csv (one row per model, dataflow, objective and layer: ZigZag's
best mapping for `opt` latency or energy beside the cost model's for cycles or energy) and prints a
summary: ZigZag over niti-hw per quantity.
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import json
import math
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from niti_hw.params import HardwareParams
from niti_hw.perf.cost import estimate, op_traffic, sram_energy_table, value_bits
from niti_hw.perf.energy import DEFAULT_PJ
from niti_hw.perf.lowering import ACC, Op, conv_inputs, lower
from niti_hw.perf.mapping import Mapping

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DRIVER = Path(__file__).resolve().parent / "zigzag_driver.py"
ZIGZAG_PYTHON = REPO / ".venv-zigzag" / "bin" / "python"

MODELS = {"lenet5": ((1, 28, 28), 64, 8), "vgg16": ((3, 32, 32), 128, 16)}
"""model: (C, H, W), batch, array side."""
DATAFLOWS = {"os": "output_stationary", "ws": "weight_stationary"}
OBJECTIVES = {"latency": "cycles", "energy": "energy", "EDP": "edp"}
"""ZigZag's `opt` and the cost model's objective of the same name."""
SPATIAL = {"os": {"conv": ("OX", "OY", "B"), "fc": ("B",)},
           "ws": {"conv": ("C", "FX", "FY"), "fc": ("C",)}}
"""Loops each dataflow unrolls over the rows (D1), in order of preference; D2 takes K."""


@dataclass(frozen=True)
class Layer:
    """One forward conv or linear layer: the cost model's GEMM and ZigZag's loop sizes."""

    op: Op
    kind: str  # "conv" or "fc"
    loops: dict[str, int]  # B, K, C (+ OY, OX, FY, FX for a conv)
    stride: int = 1
    padding: int = 0
    input_hw: tuple[int, int] = (1, 1)

    @property
    def name(self) -> str:
        return self.op.layer


def forward_layers(model: str, chw, batch: int) -> list[Layer]:
    """The forward GEMMs of one training step, each with the loops of its conv or linear layer."""
    gemms = [op for op in lower(model, chw, batch) if op.is_gemm and op.phase == "forward"]
    convs = {name: (spec, hwc) for name, spec, hwc in conv_inputs(model, chw)}
    layers = []
    for op in gemms:
        if op.layer in convs:
            spec, (h, w, cin) = convs[op.layer]
            p, s, k = spec.padding, spec.stride, spec.kernel
            oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            loops = {"B": batch, "K": spec.out_channels, "C": cin, "OY": oh, "OX": ow, "FY": k,
                     "FX": k}
            layers.append(Layer(op, "conv", loops, s, p, (h, w)))
        else:
            layers.append(Layer(op, "fc", {"B": op.m, "K": op.n, "C": op.k}))
        loops = layers[-1].loops
        assert math.prod(loops.values()) == op.macs, (op.layer, loops, op.macs)
    return layers


def workload(layers: list[Layer], result_bits: int = 32) -> list[dict]:
    """ZigZag's YAML workload: each layer on its own (inputs from DRAM, results to DRAM), int8
    operands, results (partial and final) of `result_bits`."""
    out = []
    for index, layer in enumerate(layers):
        entry = {"id": index, "name": layer.name, "operand_source": {"I": index, "W": index},
                 "operand_precision": {"W": 8, "I": 8, "O": result_bits,
                                       "O_final": result_bits}}
        if layer.kind == "conv":
            s, p = layer.stride, layer.padding
            entry.update({
                "operator_type": "Conv",
                "equation": "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
                "dimension_relations": [f"ix={s}*ox+1*fx", f"iy={s}*oy+1*fy"],
                "pr_loop_dims": ["IX", "IY"],
                "pr_loop_sizes": [layer.input_hw[1], layer.input_hw[0]],
                "padding": [[p, p], [p, p]]})
        else:
            entry.update({"operator_type": "Gemm", "equation": "O[b][k]+=W[k][c]*I[b][c]",
                          "dimension_relations": []})
        entry["loop_dims"] = list(layer.loops)
        entry["loop_sizes"] = list(layer.loops.values())
        out.append(entry)
    return out


def _memory(size_bytes: int, width_bits: int, pj_byte: tuple[float, float], operands, ports,
            served) -> dict:
    """A ZigZag memory whose reads and writes cost `pj_byte` (read, write) per byte: ports of
    `width_bits` with 8-bit granularity (ZigZag charges r_cost / w_cost per full-width access, pro
    rata below it)."""
    return {"size": size_bytes * 8, "r_cost": pj_byte[0] * width_bits / 8,
            "w_cost": pj_byte[1] * width_bits / 8, "area": 0, "latency": 1,
            "operands": operands, "served_dimensions": served,
            "ports": [{"name": name, "type": kind, "bandwidth_min": 8,
                       "bandwidth_max": width_bits, "allocation": allocation}
                      for name, kind, allocation in ports]}


def _register(operand: str, pj_byte: float, width_bits: int, words: int = 1) -> dict:
    """`words` registers of `width_bits` in each PE, read and written a word per cycle."""
    if operand == "O":
        ports = [("r_port_1", "read", ["O, tl"]), ("r_port_2", "read", ["O, th"]),
                 ("w_port_1", "write", ["O, fh"]), ("w_port_2", "write", ["O, fl"])]
    else:
        ports = [("r_port_1", "read", [f"{operand}, tl"]),
                 ("w_port_1", "write", [f"{operand}, fh"])]
    return _memory(words * width_bits // 8, width_bits, (pj_byte, pj_byte), [operand], ports, [])


def accelerator(params: HardwareParams, pj: dict | None = None) -> dict:
    """ZigZag's accelerator description of a `HardwareParams` array (see the table above)."""
    pj = pj or DEFAULT_PJ
    sram = sram_energy_table(pj, params)  # (read, write) pJ per byte, as the cost model charges
    dram_bits = int(params.dram_bytes_per_cycle * 8)
    result_bits = value_bits(ACC, "int8", params, 8)
    array = ["D1", "D2"]
    memories = {
        # A weight and the next one (WS loads a fold while the last one streams); the accumulator
        # and the result register it is copied to while the next tile accumulates (the RTL's PE).
        "reg_I": _register("I1", pj["register_byte"], 8),
        "reg_W": _register("I2", pj["register_byte"], 8, words=2),
        "reg_O": _register("O", 0.0, result_bits, words=2),
        "ifmap_sram": _memory(params.ifmap_sram_kib * 1024, params.rows * 8, sram["ifmap"], ["I1"],
                              [("r_port_1", "read", ["I1, tl"]),
                               ("w_port_1", "write", ["I1, fh"])], array),
        "filter_sram": _memory(params.filter_sram_kib * 1024, params.cols * 8, sram["filter"],
                               ["I2"], [("r_port_1", "read", ["I2, tl"]),
                                        ("w_port_1", "write", ["I2, fh"])], array),
        "ofmap_sram": _memory(params.ofmap_sram_kib * 1024, params.cols * result_bits,
                              sram["ofmap"], ["O"],
                              [("r_port_1", "read", ["O, tl"]), ("r_port_2", "read", ["O, th"]),
                               ("w_port_1", "write", ["O, fl"]),
                               ("w_port_2", "write", ["O, fh"])], array),
        "dram": _memory(2**37, dram_bits,  # 128 GiB: holds any layer
                        (pj["dram_read_byte"], pj["dram_write_byte"]), ["I1", "I2", "O"],
                        [("rw_port_1", "read_write",
                          ["I1, fh", "I1, tl", "I2, fh", "I2, tl",
                           "O, fh", "O, tl", "O, fl", "O, th"])], array),
    }
    return {"name": f"niti_{params.name}", "memories": memories,
            "operational_array": {"input_precision": [8, 8], "unit_energy": pj["int8_mac"],
                                  "unit_area": 1, "dimensions": array,
                                  "sizes": [params.rows, params.cols],
                                  "systolic_dimensions": array}}


def unrolling(sizes: dict[str, int], loops, budget: int) -> list[tuple[str, int]]:
    """Unroll factors of `loops` (at most `budget` PEs together) that keep the most PEs busy over
    the whole layer: product over loops of size / (factor * folds), times PEs used / budget. Ties go
    to the larger factors of the earlier loops."""
    choices = [range(1, min(sizes[loop], budget) + 1) for loop in loops]
    best, best_key = None, None
    for factors in itertools.product(*choices):
        used = math.prod(factors)
        if used > budget:
            continue
        busy = used / budget
        for loop, factor in zip(loops, factors):
            busy *= sizes[loop] / (factor * math.ceil(sizes[loop] / factor))
        key = (round(busy, 12), factors)
        if best_key is None or key > best_key:
            best, best_key = factors, key
    return [(loop, factor) for loop, factor in zip(loops, best) if factor > 1] or [(loops[0], 1)]


def spatial_mapping(layer: Layer, dataflow: str, params: HardwareParams) -> dict:
    """The dataflow's unrolling of `layer`: its SPATIAL loops over the rows, K over the columns."""
    rows = unrolling(layer.loops, SPATIAL[dataflow][layer.kind], params.rows)
    cols = unrolling(layer.loops, ("K",), params.cols)
    return {"D1": [f"{loop}, {factor}" for loop, factor in rows],
            "D2": [f"{loop}, {factor}" for loop, factor in cols]}


def mapping(layers: list[Layer], dataflow: str, params: HardwareParams) -> list[dict]:
    """ZigZag's mapping file: the dataflow's spatial unrolling per layer; LOMA finds the temporal
    mapping. ZigZag requires a 'default' entry; no layer uses it."""
    links = {"O": "O", "W": "I2", "I": "I1"}
    entries = [{"name": layer.name, "spatial_mapping": spatial_mapping(layer, dataflow, params),
                "memory_operand_links": links} for layer in layers]
    entries.append({"name": "default", "spatial_mapping": {"D1": ["B, 1"], "D2": ["K, 1"]},
                    "memory_operand_links": links})
    return entries


def description(layers: list[Layer], params: HardwareParams, dataflow: str, opt: str,
                lpf_limit: int = 6) -> dict:
    """ZigZag's three inputs for `layers` on `params` in `dataflow`, its objective and LOMA's
    loop prime factor limit: what sw/zigzag_driver.py reads."""
    return {"accelerator": accelerator(params), "mapping": mapping(layers, dataflow, params),
            "workload": workload(layers, value_bits(ACC, "int8", params, 8)), "opt": opt,
            "lpf_limit": lpf_limit}


def run_zigzag(python: str, run: dict) -> dict:
    """ZigZag on one description, through the driver in ZigZag's interpreter."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.json"
        path.write_text(json.dumps(run))
        result = subprocess.run([python, str(DRIVER), str(path)], capture_output=True, text=True,
                                check=False)
    if result.returncode:
        raise RuntimeError(f"ZigZag failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def zigzag_columns(layer: dict) -> dict:
    """One ZigZag layer as CSV columns: cycles and their parts, bytes DRAM read (per operand) and
    written, bytes through the SRAMs, energy per kind of memory, the mapping it chose."""
    energy = {"register": 0.0, "sram": 0.0, "dram": 0.0}
    dram_read = {"I": 0.0, "W": 0.0, "O": 0.0}
    dram_write = sram_bytes = 0.0
    for operand, levels in layer["operands"].items():
        for level in levels:
            kind = ("dram" if level["memory"] == "dram" else
                    "sram" if level["memory"].endswith("sram") else "register")
            energy[kind] += level["energy_pj"]
            if kind == "dram":
                dram_read[operand] += level["bytes"]["read_to_low"]
                dram_write += level["bytes"]["write_from_low"]
            elif kind == "sram":
                sram_bytes += sum(level["bytes"].values())
    return {"zigzag_cycles": layer["latency"], "zigzag_energy_pj": layer["energy_pj"],
            "zigzag_dram_read_bytes": sum(dram_read.values()),
            "zigzag_dram_write_bytes": dram_write,
            **{f"zigzag_dram_read_{operand}_bytes": value for operand, value in dram_read.items()},
            "zigzag_sram_bytes": sram_bytes,
            "zigzag_energy_mac_pj": layer["mac_energy_pj"],
            **{f"zigzag_energy_{kind}_pj": value for kind, value in energy.items()},
            "zigzag_temporal_cycles": layer["temporal_cycles"],
            "zigzag_stall_cycles": layer["stall_cycles"],
            "zigzag_load_store_cycles": layer["onloading_cycles"] + layer["offloading_cycles"],
            "zigzag_drain_cycles": layer["drain_cycles"],
            "zigzag_spatial": layer["spatial_mapping"],
            "zigzag_temporal": layer["temporal_mapping"]}


def niti_operands(op: Op, params: HardwareParams, label: str) -> dict:
    """The cost model's DRAM reads per operand under the mapping it reports (`order:MxNxK`; the
    RTL's schedule when it reports none) and its bytes in and out of the tensor buffer."""
    chosen = None
    if label and ":" in label:
        order, blocks = label.split(":")
        chosen = Mapping(order, *(int(v) for v in blocks.split("x")))
    t = op_traffic(op, params, mapping=chosen)
    return {"niti_dram_read_A_bytes": int(t.dram_reads.get("ifmap", 0)),
            "niti_dram_read_B_bytes": int(t.dram_reads.get("filter", 0)),
            "niti_dram_read_partial_bytes": int(t.dram_reads.get("ofmap", 0)),
            "niti_tensor_buffer_bytes": int(t.sram_write.get("tensor", 0))}


def niti_estimate(layers: list[Layer], params: HardwareParams, objective: str):
    """The cost model's forward GEMM rows, with `mapping="best"` (and the objective) where
    `estimate` takes them; returns the table and the mapping asked for."""
    accepted = inspect.signature(estimate).parameters
    options = {}
    if "mapping" in accepted:
        options["mapping"] = "best"
        if "objective" in accepted:
            options["objective"] = objective
    table = estimate([layer.op for layer in layers], params, **options)
    return table, options.get("mapping", "rtl (estimate has no mapping option)")


def compare(python: str, model: str, dataflow: str, opt: str, names=None,
            lpf_limit: int = 6) -> list[dict]:
    """Both tools on the forward layers of `model` (its input, batch and array in MODELS), or on
    those of them named in `names`."""
    chw, batch, side = MODELS[model]
    params = HardwareParams(rows=side, cols=side, dataflow=DATAFLOWS[dataflow])
    layers = [layer for layer in forward_layers(model, chw, batch)
              if names is None or layer.name in names]
    return compare_layers(python, model, layers, params, dataflow, opt, lpf_limit)


def compare_layers(python: str, model: str, layers: list[Layer], params: HardwareParams,
                   dataflow: str, opt: str, lpf_limit: int = 6) -> list[dict]:
    """One row per layer: ZigZag's best mapping for `opt` beside the cost model's."""
    theirs = run_zigzag(python, description(layers, params, dataflow, opt, lpf_limit))
    rows = []
    for layer, zz in zip(layers, theirs["layers"], strict=True):
        assert zz["layer"] == layer.name, (zz["layer"], layer.name)
        rows.append({"model": model, "array": params.name, "dataflow": dataflow,
                     "objective": opt, "layer": layer.name, "kind": layer.kind, "m": layer.op.m,
                     "n": layer.op.n, "k": layer.op.k, "macs": layer.op.macs,
                     "zigzag_macs": zz["macs"], **zigzag_columns(zz)})
    return niti_columns(rows, layers, params, opt)


def niti_columns(rows: list[dict], layers: list[Layer], params: HardwareParams,
                 opt: str) -> list[dict]:
    """`rows` (one per layer, ZigZag's columns) with the cost model's beside them."""
    ours, asked = niti_estimate(layers, params, OBJECTIVES[opt])
    out = []
    for zz, layer, (_, mine) in zip(rows, layers, ours.iterrows(), strict=True):
        assert zz["layer"] == layer.name == mine["layer"], (zz["layer"], layer.name)
        row = {**{key: value for key, value in zz.items() if not key.startswith("niti_")},
               "niti_mapping": mine["mapping"] if "mapping" in mine else asked,
               "niti_cycles": mine["cycles"], "niti_energy_pj": mine["energy_pj"],
               "niti_dram_read_bytes": mine["dram_read_bytes"],
               "niti_dram_write_bytes": mine["dram_write_bytes"],
               **niti_operands(layer.op, params, mine.get("mapping", "")),
               "niti_sram_bytes": mine["sram_read_bytes"] + mine["sram_write_bytes"],
               **{f"niti_energy_{part}_pj": mine[f"energy_{part}_pj"]
                  for part in ("mac", "register", "sram", "dram")},
               "niti_compute_cycles": mine["compute_cycles"],
               "niti_stall_cycles": mine["stall_cycles"]}
        out.append(row)
    return out


def recompute(recorded: pd.DataFrame) -> pd.DataFrame:
    """The cost model's columns again beside a recorded comparison's ZigZag columns (no ZigZag)."""
    rows = []
    for (model, dataflow, opt), group in recorded.groupby(["model", "dataflow", "objective"],
                                                          sort=False):
        chw, batch, side = MODELS[model]
        params = HardwareParams(rows=side, cols=side, dataflow=DATAFLOWS[dataflow])
        layers = {layer.name: layer for layer in forward_layers(model, chw, batch)}
        records = group.to_dict("records")
        rows += niti_columns(records, [layers[r["layer"]] for r in records], params, opt)
    return pd.DataFrame(rows)


QUANTITIES = {"cycles": "cycles", "energy": "energy_pj", "dram_read": "dram_read_bytes",
              "dram_write": "dram_write_bytes"}


def ratios(table: pd.DataFrame) -> pd.DataFrame:
    """ZigZag over niti-hw per layer and quantity (NaN where niti-hw has none)."""
    out = table[["model", "dataflow", "objective", "layer"]].copy()
    for name, column in QUANTITIES.items():
        ours = table[f"niti_{column}"].astype(float)
        out[name] = (table[f"zigzag_{column}"] / ours).where(ours > 0)
    return out


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per model, dataflow and objective: totals of both tools and ZigZag / niti-hw."""
    groups = table.groupby(["model", "dataflow", "objective"], sort=False)
    out = []
    for key, rows in groups:
        entry = dict(zip(("model", "dataflow", "objective"), key))
        for name, column in QUANTITIES.items():
            theirs, ours = rows[f"zigzag_{column}"].sum(), rows[f"niti_{column}"].sum()
            entry[f"{name}_zigzag"] = theirs
            entry[f"{name}_niti"] = ours
            entry[f"{name}_ratio"] = theirs / ours if ours else float("nan")
        out.append(entry)
    return pd.DataFrame(out)


TOLERANCE = 0.10
"""Ratios further than this from 1 are the differences sw/results/zigzag_notes.md explains."""


def _ratio_cell(theirs: float, ours: float) -> str:
    if not ours:
        return "-" if not theirs else "inf"
    ratio = theirs / ours
    return f"**{ratio:.2f}**" if abs(ratio - 1) > TOLERANCE else f"{ratio:.2f}"


def markdown(table: pd.DataFrame) -> str:
    """The recorded comparison as markdown: totals per run, then every layer; ZigZag / niti-hw
    ratios further than TOLERANCE from 1 in bold."""
    scales = {"cycles": ("cycles", 1, "kcycles", 1e3), "energy": ("energy_pj", 1, "uJ", 1e6),
              "dram_read": ("dram_read_bytes", 1, "KB read", 1e3),
              "dram_write": ("dram_write_bytes", 1, "KB written", 1e3)}
    head = ["model", "dataflow", "opt", "layer"]
    for _, (_, _, unit, _) in scales.items():
        head += [f"ZigZag {unit}", f"niti-hw {unit}", "ratio"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cells(rows: pd.DataFrame) -> list[str]:
        out = []
        for column, _, _, scale in scales.values():
            theirs, ours = rows[f"zigzag_{column}"].sum(), rows[f"niti_{column}"].sum()
            out += [f"{theirs / scale:,.1f}", f"{ours / scale:,.1f}", _ratio_cell(theirs, ours)]
        return out

    groups = table.groupby(["model", "dataflow", "objective"], sort=False)
    for (model, dataflow, opt), rows in groups:
        lines.append("| " + " | ".join([model, dataflow, opt, "**all**"] + cells(rows)) + " |")
    for (model, dataflow, opt), rows in groups:
        for _, row in rows.iterrows():
            lines.append("| " + " | ".join([model, dataflow, opt, row["layer"]]
                                           + cells(row.to_frame().T)) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--zigzag-python", default=str(ZIGZAG_PYTHON),
                        help="Python of a venv with zigzag-dse 3.9.1 (default: .venv-zigzag)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--dataflows", default=",".join(DATAFLOWS))
    parser.add_argument("--objectives", default="latency,energy",
                        help=f"ZigZag's opt, each with the cost model's objective of the same "
                             f"meaning ({', '.join(OBJECTIVES)})")
    parser.add_argument("--layers", help="comma-separated layer names (default: every forward "
                                          "conv and fc layer)")
    parser.add_argument("--lpf-limit", type=int, default=6,
                        help="LOMA's loop prime factor limit (ZigZag's default 6; 8 takes minutes "
                             "per VGG16 layer)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--markdown", action="store_true",
                        help="print OUT/zigzag_forward.csv as markdown tables (no ZigZag run)")
    parser.add_argument("--recompute", action="store_true",
                        help="the cost model's columns of OUT/zigzag_forward.csv again, beside "
                             "its recorded ZigZag columns (no ZigZag run)")
    args = parser.parse_args(argv)
    if args.markdown or args.recompute:
        path = args.out / "zigzag_forward.csv"
        flag = "--markdown" if args.markdown else "--recompute"
        if not path.exists():
            parser.error(f"{flag} needs a recorded {path}; run the comparison first")
        table = pd.read_csv(path)
        if args.recompute:
            table = recompute(table)
            table.to_csv(path, index=False)
            print(summary(table).to_string(index=False, float_format=lambda v: f"{v:,.3g}"))
        else:
            print(markdown(table))
        return 0
    if not Path(args.zigzag_python).exists():
        parser.error(f"no ZigZag Python at {args.zigzag_python}; run NITI_HW_ZIGZAG=1 sw/setup.sh "
                     f"or pass --zigzag-python")
    for option, valid in (("models", MODELS), ("dataflows", DATAFLOWS),
                          ("objectives", OBJECTIVES)):
        unknown = set(getattr(args, option).split(",")) - set(valid)
        if unknown:
            parser.error(f"--{option}: unknown {', '.join(sorted(unknown))}; valid: "
                         f"{', '.join(valid)}")
    if args.lpf_limit < 1:
        parser.error(f"--lpf-limit must be a positive number of loops; got {args.lpf_limit}")
    names = set(args.layers.split(",")) if args.layers else None
    if names:
        known = {layer.name for model in args.models.split(",")
                 for layer in forward_layers(model, MODELS[model][0], 1)}
        if names - known:
            parser.error(f"--layers: unknown {', '.join(sorted(names - known))}; the forward "
                         f"layers of {args.models} are {', '.join(sorted(known))}")
    rows = []
    for model, dataflow, opt in itertools.product(args.models.split(","),
                                                  args.dataflows.split(","),
                                                  args.objectives.split(",")):
        rows += compare(args.zigzag_python, model, dataflow, opt, names, args.lpf_limit)
        print(f"{model} {dataflow} opt={opt}: {len(rows)} layers so far", flush=True)
        table = pd.DataFrame(rows)
        args.out.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out / "zigzag_forward.csv", index=False)  # survives an interrupt
    pd.set_option("display.width", 220)
    print(summary(table).to_string(index=False, float_format=lambda v: f"{v:,.3g}"))
    print()
    print(ratios(table).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
