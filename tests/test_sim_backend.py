"""The sim backend: golden integers at the default hardware, its report, and its settings."""

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from niti_hw.cli import main
from niti_hw.data import Dataset, load_dataset
from niti_hw.datapath import SiteStats
from niti_hw.models import Fc, Flat, ModelSpec, Relu, get_model
from niti_hw.params import HardwareParams
from niti_hw.train import TrainConfig, Trainer
from niti_hw.train.build import build_network
from niti_hw.train.integer_run import IntegerRun
from niti_hw.train.prepared import batches, epoch_order, prepare
from niti_hw.train.sim_backend import SimBackend
from niti_hw.train.sim_report import (COST_COLUMNS, REPORT_CSV, REPORT_PNG, TOTALS_CSV,
                                     epoch_report, step_costs)

MODES = ("pseudo", "nearest", "stochastic")
MLP = ModelSpec("mlp", (Flat(), Fc(48), Relu(), Fc(10)), (8, 8, 1), ((0, 3),))


@pytest.fixture(scope="module")
def mnist():
    return prepare(load_dataset("mnist", limit_train=192, limit_test=64))


@pytest.fixture(scope="module")
def small_images():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (96, 8, 8, 1), dtype=np.uint8)
    labels = rng.integers(0, 10, 96).astype(np.int64)
    return prepare(Dataset(images, labels, images[:32], labels[:32], "random", 10))


def train(cls, spec, data, steps=3, batch=32, **settings):
    config = TrainConfig(**{"gemm_engine": "blas", **settings})
    built = build_network(spec, data.image_shape, data.classes, config.seed)
    run = cls(built, data, config)
    order = epoch_order(config.seed, 0, len(data.train_labels))
    for index in list(batches(order, batch))[:steps]:
        run.train_batch(index, 0)
    return run


def same_state(a, b):
    left, right = a.state_arrays(), b.state_arrays()
    return left.keys() == right.keys() and all(np.array_equal(left[k], right[k]) for k in left)


@pytest.mark.parametrize("mode", MODES)
def test_default_hardware_trains_lenet_bit_identical_to_golden(mnist, mode):
    modes = {f"{kind}_mode": mode for kind in ("activation", "error", "gradient", "loss")}
    golden = train(IntegerRun, get_model("lenet5"), mnist, **modes)
    sim = train(SimBackend, get_model("lenet5"), mnist, backend="sim", **modes)
    assert same_state(golden, sim)  # weights, exponents and LFSR states
    assert not same_state(golden, train(IntegerRun, get_model("lenet5"), mnist, steps=2, **modes))


@pytest.mark.parametrize("mode", MODES)
def test_default_hardware_trains_an_mlp_bit_identical_to_golden(small_images, mode):
    modes = {f"{kind}_mode": mode for kind in ("activation", "error", "gradient", "loss")}
    golden = train(IntegerRun, MLP, small_images, **modes)
    sim = train(SimBackend, MLP, small_images, backend="sim", **modes)
    assert same_state(golden, sim)


def test_one_tile_per_tensor_is_the_whole_tensor_exponent(small_images):
    # Batch 32, at most 64 features: every GEMM output fits one 64x64 tile.
    golden = train(IntegerRun, MLP, small_images)
    sim = train(SimBackend, MLP, small_images, backend="sim",
                hardware={"rows": 64, "cols": 64, "exponent": "tile"})
    assert same_state(golden, sim)
    smaller = train(SimBackend, MLP, small_images, backend="sim",
                    hardware={"rows": 4, "cols": 4, "lanes": 4, "exponent": "tile"})
    assert not same_state(golden, smaller)


def test_a_narrow_accumulator_saturates_and_says_where(small_images):
    sim = train(SimBackend, MLP, small_images, backend="sim", hardware={"acc_bits": 16})
    _, stats = sim.take_epoch()
    assert stats[(0, "forward")].saturated > 0  # 64 pixels of up to 127 times weights of 127
    assert not same_state(sim, train(IntegerRun, MLP, small_images))


def test_checkpoints_move_between_golden_and_sim(mnist):
    golden = train(IntegerRun, get_model("lenet5"), mnist, steps=1)
    sim = train(SimBackend, get_model("lenet5"), mnist, steps=0, backend="sim")
    sim.load_state_arrays(golden.state_arrays())
    assert same_state(golden, sim)


def test_report_is_perfs_estimate_times_the_steps_with_the_observed_counts(tmp_path, mnist):
    config = TrainConfig(backend="sim", gemm_engine="blas", batch_size=64)
    trainer = Trainer(config, tmp_path, progress=False, data=load_dataset(
        "mnist", limit_train=160, limit_test=32))
    trainer.fit()
    for name in (REPORT_CSV, TOTALS_CSV, REPORT_PNG):
        assert (tmp_path / name).stat().st_size > 0
    report, totals = pd.read_csv(tmp_path / REPORT_CSV), pd.read_csv(tmp_path / TOTALS_CSV)
    run = trainer.runs[0]
    # 160 images at batch 64: two steps of 64 and one of 32, each costed by perf once.
    expected = (2 * run.costs[64].groupby(["layer", "phase"], sort=False)[COST_COLUMNS].sum()
                + run.costs[32].groupby(["layer", "phase"], sort=False)[COST_COLUMNS].sum())
    got = report.set_index(["layer", "phase"])[COST_COLUMNS]
    assert report.skipped_updates.sum() == 0 and report.saturated.sum() == 0
    pd.testing.assert_frame_equal(got.astype(float), expected.loc[got.index].astype(float))
    assert set(report.columns) >= {"layer", "phase", "macs", "cycles", "utilisation",
                                   "sram_bytes", "dram_bytes", "energy_pj", "saturated"}
    totals = totals.set_index("phase")
    assert totals.loc["epoch", "macs"] == report.macs.sum()
    assert totals.loc["step", "cycles"] == pytest.approx(totals.loc["epoch", "cycles"] / 3)
    phases = totals.drop(index=["step", "epoch"])
    assert phases.energy_pj.sum() == pytest.approx(totals.loc["epoch", "energy_pj"])


def test_hardware_flags_are_checked_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--array", "8x8", "--out", str(out)]) != 0
    assert "need --backend sim" in capsys.readouterr().err
    assert main(["train", "--backend", "sim", "--accumulator-bits", "12", "--out", str(out)]) != 0
    assert "--accumulator-bits: acc_bits must be in 16..32" in capsys.readouterr().err
    assert main(["train", "--backend", "sim", "--array", "8by8", "--out", str(out)]) != 0
    assert "--array must be ROWSxCOLS" in capsys.readouterr().err
    assert main(["train", "--backend", "sim", "--exponent-headroom", "1", "--out", str(out)]) != 0
    assert ("--exponent-headroom: exponent_headroom applies to exponent='predicted' only"
            in capsys.readouterr().err)
    assert not out.exists()


def test_a_skipped_update_takes_its_weight_pass_off_the_report():
    hardware = HardwareParams()
    costs = {64: step_costs(get_model("lenet5"), (28, 28, 1), 10, 64, hardware)}
    half = SiteStats(updates=2, skipped_updates=1)
    full = epoch_report(costs, Counter({64: 2}), {}, hardware).set_index(["layer", "phase"])
    part = epoch_report(costs, Counter({64: 2}), {(2, "update"): half}, hardware)
    part = part.set_index(["layer", "phase"])
    pass_cost = 2 * costs[64].query("layer == 'fc1' and op == 'weight_update'").energy_pj.sum()
    assert part.loc[("fc1", "update"), "energy_pj"] == pytest.approx(
        full.loc[("fc1", "update"), "energy_pj"] - pass_cost / 2)
    assert part.loc[("fc1", "update"), "skipped_updates"] == 1
    unchanged = part.drop(index=[("fc1", "update")])
    pd.testing.assert_frame_equal(unchanged[COST_COLUMNS],
                                  full.drop(index=[("fc1", "update")])[COST_COLUMNS])
