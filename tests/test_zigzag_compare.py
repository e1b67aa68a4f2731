"""sw/compare_zigzag.py: the ZigZag descriptions it writes (everywhere), and one small layer through
ZigZag itself beside the cost model when `.venv-zigzag` exists (NITI_HW_ZIGZAG=1 sw/setup.sh)."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from niti_hw.params import HardwareParams
from niti_hw.perf.cost import sram_energy_table
from niti_hw.perf.energy import DEFAULT_PJ

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv-zigzag" / "bin" / "python"
needs_zigzag = pytest.mark.skipif(
    not PYTHON.exists(), reason="no .venv-zigzag: run NITI_HW_ZIGZAG=1 sw/setup.sh to compare "
                                "against ZigZag itself (the description tests run regardless)")


@pytest.fixture(scope="module")
def compare():
    spec = importlib.util.spec_from_file_location("compare_zigzag",
                                                  REPO / "sw" / "compare_zigzag.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up by name
    spec.loader.exec_module(module)
    return module


def layer(compare, model, name, chw, batch):
    return next(item for item in compare.forward_layers(model, chw, batch) if item.name == name)


def test_conv_workload_has_the_layer_loops(compare):
    """VGG16 conv2 on CIFAR: 3x3, padding 1, 64 -> 64 channels on 32x32; batch 128."""
    conv2 = layer(compare, "vgg16", "conv2", (3, 32, 32), 128)
    (entry,) = compare.workload([conv2])
    assert dict(zip(entry["loop_dims"], entry["loop_sizes"])) == {
        "B": 128, "K": 64, "C": 64, "OY": 32, "OX": 32, "FY": 3, "FX": 3}
    assert entry["pr_loop_dims"] == ["IX", "IY"] and entry["pr_loop_sizes"] == [32, 32]
    assert entry["padding"] == [[1, 1], [1, 1]]
    assert entry["dimension_relations"] == ["ix=1*ox+1*fx", "iy=1*oy+1*fy"]
    assert entry["operand_precision"] == {"W": 8, "I": 8, "O": 32, "O_final": 32}
    assert math.prod(entry["loop_sizes"]) == conv2.op.macs == 128 * 32 * 32 * 64 * 576


def test_linear_workload_is_batch_by_features(compare):
    fc1 = layer(compare, "lenet5", "fc1", (1, 28, 28), 64)
    (entry,) = compare.workload([fc1])
    assert entry["operator_type"] == "Gemm"
    assert dict(zip(entry["loop_dims"], entry["loop_sizes"])) == {"B": 64, "K": 500, "C": 800}


def test_accelerator_has_the_params_memories_and_energies(compare):
    params = HardwareParams(rows=8, cols=16, ifmap_sram_kib=32, filter_sram_kib=64,
                            ofmap_sram_kib=128, dram_bytes_per_cycle=4.0)
    arch = compare.accelerator(params)
    memories = arch["memories"]
    assert arch["operational_array"]["sizes"] == [8, 16]
    assert arch["operational_array"]["unit_energy"] == DEFAULT_PJ["int8_mac"]
    sizes_bits = {name: memory["size"] for name, memory in memories.items()}
    assert sizes_bits == {"reg_I": 8, "reg_W": 16, "reg_O": 64, "ifmap_sram": 32 * 1024 * 8,
                          "filter_sram": 64 * 1024 * 8, "ofmap_sram": 128 * 1024 * 8,
                          "dram": 2**40}
    (dram_port,) = memories["dram"]["ports"]
    assert dram_port["bandwidth_max"] == 32 and dram_port["type"] == "read_write"
    table = sram_energy_table(DEFAULT_PJ, params)
    for name, buffer in (("ifmap_sram", "ifmap"), ("filter_sram", "filter"),
                         ("ofmap_sram", "ofmap")):
        width = memories[name]["ports"][0]["bandwidth_max"]
        per_byte = (memories[name]["r_cost"] / (width / 8), memories[name]["w_cost"] / (width / 8))
        assert per_byte == pytest.approx(table[buffer])
    assert memories["dram"]["r_cost"] == pytest.approx(DEFAULT_PJ["dram_read_byte"] * 4)
    assert memories["reg_I"]["r_cost"] == pytest.approx(DEFAULT_PJ["register_byte"])
    assert {m["ports"][0]["bandwidth_min"] for m in memories.values()} == {8}


@pytest.mark.parametrize("model, name, dataflow, rows", [
    ("lenet5", "conv1", "os", ["OX, 8"]),                   # 24 wide: three row folds
    ("lenet5", "conv1", "ws", ["FX, 5"]),                   # C*FX*FY = 1*5*5: no pair fills 8
    ("vgg16", "conv5", "os", ["OX, 8", "OY, 2"]),           # 8x8 outputs on 16 rows
    ("vgg16", "conv11", "os", ["OX, 2", "OY, 2", "B, 4"]),  # 2x2 outputs: the batch fills in
    ("vgg16", "conv1", "ws", ["C, 3", "FX, 3"]),            # 27 = 3*3*3 on 16 rows: 9 busy
    ("vgg16", "fc1", "ws", ["C, 16"]),
])
def test_spatial_unrolling_of_known_layers(compare, model, name, dataflow, rows):
    chw, batch, side = compare.MODELS[model]
    item = layer(compare, model, name, chw, batch)
    params = HardwareParams(rows=side, cols=side)
    mapping = compare.spatial_mapping(item, dataflow, params)
    assert mapping["D1"] == rows
    assert mapping["D2"] == [f"K, {min(item.loops['K'], side)}"]


def test_unrolling_never_exceeds_the_rows_and_beats_any_single_loop(compare):
    sizes = {"C": 20, "FX": 5, "FY": 5}
    for budget in (3, 8, 16, 64):
        chosen = compare.unrolling(sizes, ("C", "FX", "FY"), budget)
        assert math.prod(f for _, f in chosen) <= budget

        def busy(factors):
            used = math.prod(factors.values())
            return used / budget * math.prod(
                sizes[d] / (f * math.ceil(sizes[d] / f)) for d, f in factors.items())
        best_single = max(busy({d: f}) for d in sizes for f in range(1, min(sizes[d], budget) + 1))
        assert busy(dict(chosen)) >= best_single


def test_bad_options_are_refused_in_one_line(compare, capsys, tmp_path):
    with pytest.raises(SystemExit):
        compare.main(["--zigzag-python", str(tmp_path / "nothing")])
    assert "no ZigZag Python at" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        compare.main(["--zigzag-python", __file__, "--models", "lenet5,alexnet"])
    assert "--models: unknown alexnet; valid: lenet5, vgg16" in capsys.readouterr().err


@needs_zigzag
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_zigzag_and_the_model_on_a_small_conv(compare, dataflow):
    """LeNet-5 conv1 at batch 2 on an 8x8 array: ZigZag counts the same MACs, charges them the same
    energy, needs at least MACs / PEs cycles and fetches every input and weight at least once."""
    conv1 = layer(compare, "lenet5", "conv1", (1, 28, 28), 2)
    params = HardwareParams(rows=8, cols=8, dataflow=compare.DATAFLOWS[dataflow])
    (row,) = compare.compare_layers(str(PYTHON), "test", [conv1], params, dataflow, "latency")
    assert row["zigzag_macs"] == row["macs"] == 2 * 24 * 24 * 20 * 25
    assert row["zigzag_energy_mac_pj"] == pytest.approx(row["niti_energy_mac_pj"])
    assert row["zigzag_cycles"] >= math.ceil(row["macs"] / 64)
    assert row["niti_cycles"] >= math.ceil(row["macs"] / 64)
    assert row["zigzag_dram_read_bytes"] >= 2 * 28 * 28 + 500
    assert row["zigzag_dram_write_bytes"] == 2 * 24 * 24 * 20 * 4  # int32 results, all to DRAM


def test_markdown_marks_ratios_beyond_ten_percent(compare):
    import pandas as pd
    row = {"model": "m", "dataflow": "os", "objective": "latency", "layer": "conv1",
           "zigzag_cycles": 1050, "niti_cycles": 1000, "zigzag_energy_pj": 3e6,
           "niti_energy_pj": 2e6, "zigzag_dram_read_bytes": 800, "niti_dram_read_bytes": 1000,
           "zigzag_dram_write_bytes": 4000, "niti_dram_write_bytes": 0}
    lines = compare.markdown(pd.DataFrame([row])).splitlines()
    assert lines[2] == ("| m | os | latency | **all** | 1.1 | 1.0 | 1.05 | 3.0 | 2.0 | **1.50** "
                        "| 0.8 | 1.0 | **0.80** | 4.0 | 0.0 | inf |")
    assert lines[3].startswith("| m | os | latency | conv1 | 1.1 | 1.0 | 1.05 |")


def test_layer_and_search_options_are_checked(compare, capsys):
    with pytest.raises(SystemExit):
        compare.main(["--zigzag-python", __file__, "--models", "lenet5", "--layers", "conv9"])
    assert ("--layers: unknown conv9; the forward layers of lenet5 are conv1, conv2, fc1, fc2"
            in capsys.readouterr().err)
    with pytest.raises(SystemExit):
        compare.main(["--zigzag-python", __file__, "--lpf-limit", "0"])
    assert "--lpf-limit must be a positive number of loops; got 0" in capsys.readouterr().err


def test_narrower_accumulator_narrows_the_results_in_both_descriptions(compare):
    """acc_bits 24 stores 3-byte results in the cost model; ZigZag gets the same width."""
    fc2 = layer(compare, "lenet5", "fc2", (1, 28, 28), 64)
    params = HardwareParams(acc_bits=24)
    run = compare.description([fc2], params, "os", "latency")
    assert run["workload"][0]["operand_precision"]["O_final"] == 24
    assert run["accelerator"]["memories"]["reg_O"]["size"] == 48
    assert run["accelerator"]["memories"]["ofmap_sram"]["ports"][0]["bandwidth_max"] == 8 * 24


def test_recompute_puts_the_models_rows_beside_recorded_zigzag_columns(compare):
    """A recorded row keeps its ZigZag columns and gets the cost model's estimate of its layer."""
    import pandas as pd

    from niti_hw.perf.cost import estimate
    recorded = pd.DataFrame([{"model": "lenet5", "array": "8x8", "dataflow": "ws",
                              "objective": "energy", "layer": "fc2", "zigzag_cycles": 123.0,
                              "niti_cycles": -1, "niti_energy_pj": -1.0}])
    (row,) = compare.recompute(recorded).to_dict("records")
    fc2 = layer(compare, "lenet5", "fc2", (1, 28, 28), 64)
    (mine,) = estimate([fc2.op], HardwareParams(dataflow="weight_stationary"), mapping="best",
                       objective="energy").to_dict("records")
    assert row["zigzag_cycles"] == 123.0
    assert (row["niti_cycles"], row["niti_energy_pj"]) == (mine["cycles"], mine["energy_pj"])
    assert row["niti_mapping"] == mine["mapping"]
