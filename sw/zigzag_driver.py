"""Runs ZigZag on one JSON description and prints one JSON line of per-layer results.

Runs inside ZigZag's own interpreter (`.venv-zigzag/bin/python sw/zigzag_driver.py run.json`), so it
imports ZigZag and the standard library only; `sw/compare_zigzag.py` writes the description and
reads the answer. The description holds ZigZag's three inputs as data ("accelerator", "mapping",
"workload": the structures of its YAML files), the objective ("opt": latency, energy or EDP) and
LOMA's loop-prime-factor limit ("lpf_limit"). Each layer's answer is the best mapping ZigZag found:
its latency (cycles) and the parts it adds up, its energy (pJ: MACs, and each memory level per
operand), the bytes each memory level moved in each direction, and the mapping itself.
"""

import contextlib
import io
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import yaml
from zigzag.api import get_hardware_performance_zigzag
from zigzag.mapping.data_movement import DataMoveAttr

DIRECTIONS = {"rd_out_to_low": "read_to_low", "wr_in_by_low": "write_from_low",
              "rd_out_to_high": "read_to_high", "wr_in_by_high": "write_from_high"}


def level_bytes(cme, operand, level: int) -> dict[str, float]:
    """Bytes one memory level moved for `operand`, per direction, over all its unrolled instances
    (ZigZag counts the values moved over the whole layer)."""
    move = cme.mapping.unit_mem_data_movement[operand][level]
    counts = move.get_attribute(DataMoveAttr.DATA_ELEM_MOVE_COUNT)
    precision = move.get_attribute(DataMoveAttr.DATA_PRECISION)
    return {DIRECTIONS[d.value]: counts.data[d] * precision.data[d] / 8 for d in counts.data}


def layer_result(cme) -> dict:
    hierarchy = cme.accelerator.mem_hierarchy_dict
    links = cme.memory_operand_links
    operands = {}
    for operand in cme.layer.layer_operands:
        levels = hierarchy[links.layer_to_mem_op(operand)]
        operands[str(operand)] = [
            {"memory": level.name, "bytes": level_bytes(cme, operand, index),
             "energy_pj": cme.mem_energy_breakdown[operand][index]}
            for index, level in enumerate(levels[:cme.mapping.mem_level[operand]])]
    return {
        "layer": cme.layer.name, "macs": int(cme.layer.total_mac_count),
        "latency": float(cme.latency_total2), "ideal_cycles": float(cme.ideal_cycle),
        "temporal_cycles": float(cme.ideal_temporal_cycle),
        "stall_cycles": float(cme.stall_slack_comb),
        "onloading_cycles": float(cme.data_onloading_cycle),
        "offloading_cycles": float(cme.data_offloading_cycle),
        "drain_cycles": float(cme.systolic_drain_cycle),
        "energy_pj": float(cme.energy_total), "mac_energy_pj": float(cme.mac_energy),
        "operands": operands,
        "spatial_mapping": str(cme.layer.spatial_mapping),
        "temporal_mapping": str(cme.temporal_mapping),
    }


def run(description: dict) -> dict:
    logging.disable(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for part in ("accelerator", "mapping", "workload"):
            paths[part] = Path(folder) / f"{part}.yaml"
            paths[part].write_text(yaml.safe_dump(description[part], sort_keys=False))
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            _, _, cmes = get_hardware_performance_zigzag(
                str(paths["workload"]), str(paths["accelerator"]), str(paths["mapping"]),
                opt=description["opt"], lpf_limit=description.get("lpf_limit", 6),
                dump_folder=str(Path(folder) / "out"), loma_show_progress_bar=False)
        wall = time.perf_counter() - start
    return {"wall_s": wall, "layers": [layer_result(cme) for cme, _ in cmes[0][1]]}


if __name__ == "__main__":
    print(json.dumps(run(json.loads(Path(sys.argv[1]).read_text()))))
