"""sw/codesign.py seeds: explore's accuracy points become seeds.csv rows, and the summary says
which variants lie outside the baseline's seed range."""

import importlib.util
import json
from pathlib import Path

import pandas as pd

from niti_hw.explore.store import Store

SW = Path(__file__).resolve().parent.parent / "sw"


def codesign():
    spec = importlib.util.spec_from_file_location("codesign", SW / "codesign.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_variant_names_follow_the_hardware():
    names = codesign().variant_name
    assert names({"acc_bits": 32, "exponent": "tensor", "exponent_headroom": 0}) == \
        "int32 tensor exponent"
    assert names({"acc_bits": 20, "exponent": "tensor"}) == "accumulator 20 bits"
    assert names({"acc_bits": 32, "exponent": "tile", "rows": 32, "cols": 32, "lanes": 8}) == \
        "per-tile exponent 32x32"
    assert names({"acc_bits": 32, "exponent": "predicted", "exponent_headroom": 1}) == \
        "predicted exponent, 1 bit headroom"


def test_a_study_folder_gives_its_finished_and_stopped_runs(tmp_path):
    config = {"epochs": 10, "seed": 2, "hardware": {"acc_bits": 16, "exponent": "tensor"}}
    ok = {**config, "seed": 1, "hardware": {"acc_bits": 32, "exponent": "predicted",
                                            "exponent_headroom": 0}}
    with Store(tmp_path) as store:
        store.write("accuracy", [
            {"key": "a", "kind": "accuracy", "status": "ok", "reason": "",
             "config": json.dumps(ok), "accuracy_pct": 98.88},
            {"key": "b", "kind": "accuracy", "status": "failed",
             "reason": "did not learn: 9.80 % test accuracy after epoch 2 of 10 (chance 10.00 %)",
             "config": json.dumps(config), "accuracy_pct": None},
            {"key": "c", "kind": "accuracy", "status": "failed", "reason": "worker died",
             "config": json.dumps(config), "accuracy_pct": None}])
    rows = codesign().study_seeds(tmp_path)
    assert rows[["variant", "seed", "epochs", "final_pct"]].values.tolist() == [
        ["predicted exponent", 1, 10, 98.88], ["accumulator 16 bits", 2, 2, 9.8]]


def test_the_summary_flags_only_variants_whose_seeds_all_leave_the_baseline_range():
    table = pd.DataFrame({
        "variant": ["int32 tensor exponent"] * 3 + ["a"] * 3 + ["b"] * 3,
        "seed": [0, 1, 2] * 3,
        "final_pct": [99.39, 99.43, 99.40, 98.77, 98.88, 99.02, 99.35, 99.46, 99.50]})
    summary = codesign().seed_summary(table).set_index("variant")
    assert summary.loc["a", "mean_pct"] == 98.89 and summary.loc["a", "sd_pct"] == 0.13
    assert summary.loc["a", "vs_baseline"] == -0.52
    assert summary.outside_baseline_range.to_dict() == {
        "int32 tensor exponent": False, "a": True, "b": False}
