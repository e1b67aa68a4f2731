"""`niti-hw estimate`: output forms, the SCALE-Sim mode, and one-line refusals that write nothing."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from niti_hw.cli import main
from niti_hw.params import HardwareParams
from niti_hw.perf import timing

REPO = Path(__file__).resolve().parent.parent


def estimate(capsys, *args):
    code = main(["estimate", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_table_has_every_layer_phase_and_the_fp32_ratio(capsys):
    code, out, _ = estimate(capsys, "--model", "lenet5", "--batch", "8")
    assert code == 0
    for needle in ("conv1  forward", "conv2    error", "fc2 gradient", "conv1   update",
                   "loss     loss", "step", "epoch", "int8/fp32: cycles"):
        assert needle in out, needle
    assert "conv1    error" not in out  # the first layer propagates no error


def test_json_total_cycles_is_the_sum_of_the_rows(capsys, tmp_path):
    out_file = tmp_path / "step.json"
    code, _, err = estimate(capsys, "--model", "lenet5", "--batch", "4", "--array", "4x4",
                            "--dataflow", "ws", "--format", "json", "--out", str(out_file))
    assert code == 0 and "wrote" in err
    document = json.loads(out_file.read_text())
    assert isinstance(document["total_cycles"], int)
    assert document["total_cycles"] == sum(row["cycles"] for row in document["rows"])
    assert document["params"]["dataflow"] == "weight_stationary"
    assert 0 < document["int8_over_fp32"]["energy"] < 1


def test_scalesim_gemm_gives_scalesims_count(capsys):
    code, out, _ = estimate(capsys, "--gemm", "33x17x70", "--array", "4x4", "--dataflow", "is",
                            "--timing", "scalesim", "--format", "json")
    assert code == 0
    assert json.loads(out)["total_cycles"] == 4373  # recorded SCALE-Sim 3.0.0 run


def test_scalesim_gemm_gives_scalesims_bytes(capsys):
    """Recorded SCALE-Sim 3.0.0 run with 1 KiB SRAMs (DETAILED_ACCESS_REPORT, 1-byte words): SRAM
    reads 2,310 ifmap + 10,710 filter, 10,098 ofmap writes; DRAM reads 2,310 + 10,710, 10,101
    writes."""
    code, out, _ = estimate(capsys, "--gemm", "33x17x70", "--array", "4x4", "--dataflow", "is",
                            "--timing", "scalesim", "--ifmap-sram-kib", "1", "--filter-sram-kib",
                            "1", "--ofmap-sram-kib", "1", "--format", "json")
    assert code == 0
    row = json.loads(out)["rows"][0]
    assert (row["sram_read_bytes"], row["sram_write_bytes"], row["dram_read_bytes"],
            row["dram_write_bytes"]) == (13020, 10098, 13020, 10101)


def test_csv_has_one_row_per_op(capsys, tmp_path):
    out_file = tmp_path / "gemm.csv"
    assert main(["estimate", "--gemm", "64x64x64", "--format", "csv", "--out", str(out_file)]) == 0
    table = pd.read_csv(out_file)
    assert list(table["op"]) == ["gemm", "bitwidth", "round"]
    p = HardwareParams()
    assert table["compute_cycles"].sum() == timing.tensor_gemm_cycles(64, 64, 64, p)


def test_energy_defaults_round_trip_through_the_option(capsys, tmp_path):
    energy = tmp_path / "e.toml"
    assert main(["estimate", "--energy-defaults", "--out", str(energy)]) == 0
    capsys.readouterr()
    _, default_out, _ = estimate(capsys, "--gemm", "8x8x8", "--format", "json")
    _, file_out, _ = estimate(capsys, "--gemm", "8x8x8", "--format", "json", "--energy", str(energy))
    assert json.loads(default_out)["rows"] == json.loads(file_out)["rows"]


@pytest.mark.parametrize("args, message", [
    (["--gemm", "8x8"], r"--gemm must be MxNxK with positive integers, e.g. 64x64x64; got '8x8'"),
    (["--gemm", "8x0x8"], r"--gemm must be MxNxK with positive integers"),
    (["--array", "8by8"], r"--array must be ROWSxCOLS with positive integers, e.g. 16x16; got '8by8'"),
    (["--array", "1025x8"], r"--array 1025x8: rows must be in 1\.\.1024; got 1025"),
    (["--array", "8x8", "--lanes", "3"], r"lanes must divide cols"),
    (["--tensor-buffer-words", "10"],
     r"tensor_buffer_words must be in 64\.\.\d+ \(it must hold at least one 8x8 tile\); got 10"),
    (["--dram-bytes-per-cycle", "0"], r"dram_bytes_per_cycle must be a number > 0 \(bytes per cycle\)"),
    (["--model", "lenet5", "--input", "1x8x8"], r"lenet5 does not fit a 1x8x8 \(CxHxW\) input: layer 3"),
    (["--model", "lenet5", "--input", "28x28"], r"--input must be CxHxW with positive integers"),
    (["--gemm", "8x8x8", "--timing", "scalesim", "--lanes", "4", "--dram-bytes-per-cycle", "2"],
     r"--timing scalesim models SCALE-Sim.s cycles and accesses only; it has no --lanes, "
     r"--dram-bytes-per-cycle"),
    (["--model", "lenet5", "--batch", "0"], r"--batch must be a positive integer; got 0"),
    (["--gemm", "8x8x8", "--timing", "scalesim", "--fuse"],
     r"--timing scalesim models SCALE-Sim.s cycles and accesses only; it has no --fuse"),
    (["--gemm", "8x8x8", "--timing", "scalesim", "--keep-on-chip"],
     r"--timing scalesim models SCALE-Sim.s cycles and accesses only; it has no --keep-on-chip"),
    (["--gemm", "8x8x8", "--mapping", "worst"], r"argument --mapping: invalid choice: 'worst'"),
    (["--gemm", "8x8x8", "--objective", "area"], r"argument --objective: invalid choice: 'area'"),
    (["--gemm", "8x8x8", "--timing", "scalesim", "--mapping", "best"],
     r"--timing scalesim costs SCALE-Sim's own schedule; --mapping best needs --timing rtl"),
    (["--gemm", "8x8x8", "--plot", "/no/such/folder/roof.png"],
     r"--plot /no/such/folder/roof.png: folder /no/such/folder does not exist"),
    (["--gemm", "4096x4096x4096", "--array", "256x256"],
     r"tensor_buffer_words must be in 65536\.\.\d+ \(it must hold at least one 256x256 tile\)"),
])
def test_bad_input_gets_one_line_and_writes_nothing(capsys, tmp_path, args, message):
    out_file = tmp_path / "never.csv"
    code, out, err = estimate(capsys, *args, "--format", "csv", "--out", str(out_file))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert re.search(message, err), err
    assert list(tmp_path.iterdir()) == []


def test_keep_on_chip_composes_with_fusion_and_the_search(capsys):
    """Same document, same rows; the kept tensors' bytes leave DRAM (LeNet-5, batch 2: conv1's
    fused, pooled output, 2 x 12 x 12 x 20 int8 values, fits half the 64 KiB ifmap SRAM, so conv2
    does not fetch it; conv2's weight gradient reads it again, so it is still stored)."""
    common = ["--model", "lenet5", "--batch", "2", "--fuse", "--mapping", "best",
              "--format", "json"]
    _, plain, _ = estimate(capsys, *common)
    code, kept, _ = estimate(capsys, *common, "--keep-on-chip")
    assert code == 0
    plain, kept = json.loads(plain), json.loads(kept)
    assert (plain["keep_on_chip"], kept["keep_on_chip"]) == (False, True)
    assert kept.keys() == plain.keys() and kept["fp32"].keys() == plain["fp32"].keys()
    assert [(r["layer"], r["op"]) for r in kept["rows"]] == \
        [(r["layer"], r["op"]) for r in plain["rows"]]
    assert all(r.keys() == p.keys() for r, p in zip(kept["rows"], plain["rows"]))

    def moved(document):
        return sum(r["dram_read_bytes"] + r["dram_write_bytes"] for r in document["rows"])

    assert moved(kept) < moved(plain)
    conv2 = [(r, p) for r, p in zip(kept["rows"], plain["rows"])
             if (r["layer"], r["phase"], r["op"]) == ("conv2", "forward", "gemm")]
    assert [p["dram_read_bytes"] - r["dram_read_bytes"] for r, p in conv2] == [2 * 12 * 12 * 20]


def test_bad_energy_file_writes_nothing(capsys, tmp_path):
    energy = tmp_path / "e.toml"
    energy.write_text("[energy_pj]\nint8_mac = 0.3\n")
    out_file = tmp_path / "never.json"
    code, _, err = estimate(capsys, "--gemm", "8x8x8", "--energy", str(energy), "--out", str(out_file))
    assert code == 2 and "missing action(s) fp32_mac" in err and not out_file.exists()


def test_estimate_runs_without_amaranth():
    """perf and the estimate command never import the RTL (Amaranth blocked in a fresh process)."""
    script = (
        "import sys, argparse\n"
        "sys.modules['amaranth'] = None\n"
        "from niti_hw.commands import estimate\n"
        "parser = argparse.ArgumentParser(); estimate.register(parser.add_subparsers())\n"
        "args = parser.parse_args(['estimate', '--model', 'lenet5', '--batch', '2', "
        "'--format', 'csv'])\n"
        "assert args.func(args) == 0\n"
        "assert not [m for m in sys.modules if m.startswith(('niti_hw.rtl', 'niti_hw.train'))]\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert result.returncode == 0, result.stderr


def test_bench_estimate_prints_its_table(capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_estimate", REPO / "sw" / "bench_estimate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.main(["--repeat", "1", "--array", "4x4", "--in-process-only"])
    assert (table.seconds > 0).all()
    assert "VGG16 CIFAR-10 training step, batch 128, 4x4 array" in capsys.readouterr().out


def test_best_mapping_names_each_gemm_mapping_and_draws_the_roofline(capsys, tmp_path):
    plot = tmp_path / "roofline.png"
    code, out, err = estimate(capsys, "--model", "lenet5", "--batch", "16", "--mapping", "best",
                              "--objective", "energy", "--format", "json", "--plot", str(plot))
    assert code == 0 and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    document = json.loads(out)
    assert (document["mapping"], document["objective"]) == ("best", "energy")
    gemms = [row for row in document["rows"] if row["op"] == "gemm"]
    assert len(gemms) == 11
    for row in gemms:
        detail = row["mapping_detail"]
        assert row["mapping"] == f"{detail['order']}:{detail['block_m']}x{detail['block_n']}x" \
                                 f"{detail['block_k']}"
        assert row["runs_on"] in ("rtl", "analytical")
        assert row["runs_on"] == "analytical" or detail["tile_walk"] is not None
        assert row["dram_read_bytes"] + row["dram_write_bytes"] >= row["compulsory_bytes"]
    _, rtl_out, _ = estimate(capsys, "--model", "lenet5", "--batch", "16", "--format", "json")
    rtl = json.loads(rtl_out)
    assert document["totals"]["step"]["energy_pj"] <= rtl["totals"]["step"]["energy_pj"]
    words = rtl["params"]["tensor_buffer_words"]  # the RTL's own schedule runs what fits its buffer
    runs = [(row["runs_on"], row["m"] * row["n"] <= words, row["mapping_detail"]["tile_walk"])
            for row in rtl["rows"] if row["op"] == "gemm"]
    assert all(on == ("rtl" if fits else "analytical") and walk == {"band": 0, "block": 0}
               for on, fits, walk in runs)
    assert {on for on, _, _ in runs} == {"rtl", "analytical"}


def test_tpu_class_arrays_are_costed(capsys):
    code, out, _ = estimate(capsys, "--gemm", "1024x1024x1024", "--array", "128x128",
                            "--tensor-buffer-words", "1048576", "--format", "json")
    assert code == 0
    assert json.loads(out)["rows"][0]["compute_bound_cycles"] == 1024 ** 3 // 128 ** 2


def test_the_rtl_commands_refuse_what_only_the_cost_model_takes(capsys, tmp_path):
    code = main(["generate", "--rows", "128", "--cols", "128", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "the RTL is generated for arrays up to 64x64; got 128x128" in err
    assert list(tmp_path.iterdir()) == []


def test_best_rtl_searches_only_what_the_datapath_runs(capsys, tmp_path):
    """`--mapping best-rtl`: a tile walk the RTL runs (no K split), never worse than `rtl`, never
    better than `best`; here it removes rtl's DRAM stalls with a banded walk. The roofline draws
    it beside `rtl`."""
    plot = tmp_path / "roofline.png"
    args = ("--gemm", "512x2048x512", "--array", "8x8", "--ifmap-sram-kib", "16",
            "--filter-sram-kib", "16", "--tensor-buffer-words", "1048576", "--format", "json")
    rows = {}
    for mapping in ("rtl", "best", "best-rtl"):
        extra = ("--plot", str(plot)) if mapping == "best-rtl" else ()
        code, out, _ = estimate(capsys, *args, "--mapping", mapping, *extra)
        assert code == 0
        (rows[mapping],) = [row for row in json.loads(out)["rows"] if row["op"] == "gemm"]
    assert rows["best"]["cycles"] <= rows["best-rtl"]["cycles"] < rows["rtl"]["cycles"]
    assert rows["best-rtl"]["runs_on"] == "rtl" and rows["best"]["runs_on"] == "analytical"
    assert rows["best-rtl"]["mapping_detail"]["tile_walk"] not in (None, {"band": 0, "block": 0})
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
