"""The CLI guard: every bad command line gives one line, exit status 2, no traceback, and writes
nothing, and it is refused before any data is loaded or any tool runs."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import niti_hw
import niti_hw.train.evaluation as evaluation
import niti_hw.train.trainer as trainer_module
from niti_hw.cli import main

HAS_RTL = importlib.util.find_spec("amaranth") is not None

NOT_INT = st.sampled_from(["x", "1.5", "", "1e3", "one"])
BELOW = {1: st.integers(max_value=0).map(str) | NOT_INT,
         0: st.integers(max_value=-1).map(str) | NOT_INT}
BAD_NAME = st.text(alphabet="abcxyz-_09 ", max_size=8).filter(lambda t: not t.startswith("-"))
BAD_SCHEDULE = st.sampled_from(["x", "0-3", "1:3", "0:0", "0:9", ",", "0:3:1", "-1:3"])

TRAIN_BAD = {
    "--epochs": BELOW[1], "--batch-size": BELOW[1], "--limit-train": BELOW[1],
    "--limit-test": BELOW[1], "--seed": BELOW[0], "--mu-schedule": BAD_SCHEDULE,
    "--acc-bits": st.integers().filter(lambda n: not 8 <= n <= 24).map(str) | NOT_INT,
    "--model": BAD_NAME, "--dataset": BAD_NAME, "--backend": BAD_NAME, "--device": BAD_NAME,
    "--gemm-engine": BAD_NAME, "--activation-mode": BAD_NAME, "--loss-mode": BAD_NAME,
    "--format": BAD_NAME, "--baseline": BAD_NAME,
}
TRAIN_GOOD = [["--limit-train", "64"], ["--limit-test", "32"], ["--quiet"], ["--epochs", "2"],
              ["--model", "lenet5"], ["--format", "json"], ["--seed", "3"],
              ["--error-mode", "nearest"], ["--dataset", "mnist"]]
EVALUATE_BAD = {"--limit-test": BELOW[1], "--dataset": BAD_NAME, "--backend": BAD_NAME,
                "--format": BAD_NAME, "--gemm-engine": BAD_NAME}
SYNTH_BAD = {"--jobs": BELOW[1], "--seeds": BELOW[1], "--sizes": st.sampled_from(["0x2", "2y2", "x", "2x0", "-1x2"]),
             "--units": st.sampled_from(["foo", "datapath_x", "systolic"]),
             "--rows": BELOW[1], "--lanes": BELOW[1], "--round-mode": BAD_NAME}
GENERATE_BAD = {"--unit": st.sampled_from(["foo", "array"]), "--rows": BELOW[1],
                "--cols": BELOW[1], "--round-mode": BAD_NAME}


@pytest.fixture
def guarded(tmp_path, monkeypatch):
    """Run in an empty folder where loading data or running a synthesis tool fails the test."""
    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the arguments were checked")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(trainer_module, "load_dataset", forbidden)
    monkeypatch.setattr(evaluation, "load_dataset", forbidden)
    if HAS_RTL:
        import niti_hw.rtl.synth as synth
        import niti_hw.rtl.verilog as verilog
        monkeypatch.setattr(synth, "run_jobs", forbidden)
        monkeypatch.setattr(verilog, "write_all", forbidden)
    return tmp_path


def assert_refused(argv, folder, capsys, command=None, match=None):
    before = sorted(folder.rglob("*"))
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2, (argv, captured)
    assert len(lines) == 1 and captured.out == "", (argv, captured)
    assert "Traceback" not in captured.err
    top = command == "" or not argv or argv[0].startswith("-")
    prefix = "niti-hw: error: " if top else f"niti-hw {command or argv[0]}: error: "
    assert lines[0].startswith(prefix), (argv, lines)
    if match:
        assert match in lines[0], lines[0]
    assert sorted(folder.rglob("*")) == before  # nothing written
    return lines[0]


def command_lines(command, bad, good, prefix=()):
    """A command line with one invalid flag value among valid flags, in any order."""
    @st.composite
    def build(draw):
        flag = draw(st.sampled_from(sorted(bad)))
        parts = [[flag, draw(bad[flag])]] + draw(st.lists(st.sampled_from(good), max_size=3))
        parts = draw(st.permutations(parts))
        return [command, *prefix, *(item for part in parts for item in part)]
    return build()


SLOW_OK = settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SLOW_OK
@given(argv=command_lines("train", TRAIN_BAD, TRAIN_GOOD))
def test_train_refuses_every_bad_value_in_one_line(guarded, capsys, argv):
    assert_refused(argv, guarded, capsys)


@SLOW_OK
@given(argv=command_lines("evaluate", EVALUATE_BAD, [["--limit-test", "5"], ["--format", "json"]],
                          prefix=("missing.npz",)))
def test_evaluate_refuses_every_bad_value_in_one_line(guarded, capsys, argv):
    assert_refused(argv, guarded, capsys)


@pytest.mark.skipif(not HAS_RTL, reason="synth and generate need the rtl extra")
@SLOW_OK
@given(argv=command_lines("synth", SYNTH_BAD, [["--no-pnr"], ["--jobs", "2"], ["--no-ice40"]])
       | command_lines("generate", GENERATE_BAD, [["--out", "verilog"], ["--lanes", "4"]]))
def test_hardware_commands_refuse_every_bad_value_in_one_line(guarded, capsys, argv):
    assert_refused(argv, guarded, capsys)


def test_bad_command_and_unknown_flag_are_one_line(guarded, capsys):
    assert_refused([], guarded, capsys, match="required: COMMAND")
    assert_refused(["fly"], guarded, capsys, command="", match="invalid choice: 'fly'")
    line = assert_refused(["train", "--epoch-count", "3"], guarded, capsys)
    assert "unrecognized arguments: --epoch-count 3" in line


def test_named_cases_of_the_issue(guarded, capsys):
    (guarded / "afile").write_text("x")
    (guarded / "adir").mkdir()
    junk = guarded / "junk.npz"
    junk.write_bytes(np.random.default_rng(0).bytes(200))
    cases = [
        (["train", "--limit-train", "0"], "--limit-train: expected an integer >= 1; got 0"),
        (["train", "--limit-test", "0"], "--limit-test: expected an integer >= 1; got 0"),
        (["train", "--acc-bits", "0"], "--acc-bits must be in 8..24"),
        (["train", "--out", "afile"], "--out afile is a file; expected a folder"),
        (["train", "--out", "afile/run"], "afile is a file, so no folder can be made there"),
        (["train", "--resume", "junk.npz"], "damaged or not a niti-hw checkpoint"),
        (["evaluate", "junk.npz"], "damaged or not a niti-hw checkpoint"),
        (["train", "--resume", "none.npz"], "no checkpoint at none.npz"),
        (["train", "--mu-schedule", "1:3"], "--mu-schedule must start at epoch 0"),
        (["train", "--device", "cuda"], "--device cuda needs --backend torch"),
    ]
    if HAS_RTL:
        cases += [
            (["generate", "--out", "afile"], "--out afile is a file"),
            (["synth", "--csv", "adir"], "--csv adir is a folder; expected a file name"),
            (["synth", "--units", "foo"], "unknown unit 'foo'; valid units: systolic_array, "
                                          "bitwidth_detector, shift_round_nearest"),
            (["synth", "--sizes", "2x2", "--units", "bitwidth_detector"],
             "--sizes sizes systolic_array only"),
            (["synth", "--jobs", "0"], "--jobs: expected an integer >= 1; got 0"),
            (["synth", "--seeds", "1", "0"], "--seeds: expected an integer >= 1; got 0"),
        ]
    for argv, message in cases:
        line = assert_refused(argv, guarded, capsys, match=message)
        assert "allow_pickle" not in line


@pytest.mark.skipif(not HAS_RTL, reason="synth needs the rtl extra")
def test_synth_makes_one_job_per_seed(tmp_path, monkeypatch, capsys):
    import pandas as pd

    import niti_hw.rtl.synth as synth
    jobs = []

    def record(given, work, **kwargs):
        jobs.extend(given)
        return pd.DataFrame([{"unit": job.unit, "seed": job.seed} for job in given])

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(synth, "run_jobs", record)
    assert main(["synth", "--units", "shift_round_stochastic", "bitwidth_detector",
                 "--seeds", "3", "1", "3"]) == 0
    assert [(job.unit, job.seed) for job in jobs] == [
        ("bitwidth_detector", 3), ("bitwidth_detector", 1),
        ("shift_round_stochastic", 3), ("shift_round_stochastic", 1)]
    assert "| shift_round_stochastic | 1 |" in capsys.readouterr().out


def test_data_root_is_named_as_the_flag(guarded, capsys, monkeypatch):
    from niti_hw.data import load_dataset
    monkeypatch.setattr(trainer_module, "load_dataset", load_dataset)
    line = assert_refused(["train", "--dataset", "idx", "--quiet"], guarded, capsys)
    assert "needs its folder: pass --data-root" in line and "root=" not in line


def test_an_unexpected_error_says_it_is_a_bug_and_where_to_report(guarded, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(trainer_module, "load_dataset", broken)
    code = main(["train", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "internal error (KeyError: 'boom')" in err and "issue tracker" in err
    monkeypatch.setenv("NITI_HW_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["train", "--quiet"])


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"niti-hw {niti_hw.__version__}"


def test_missing_extra_names_the_extra(guarded, capsys, monkeypatch):
    import niti_hw.extras as extras

    real = extras.importlib.import_module

    def no_amaranth(name, *args):
        if name.startswith("niti_hw.rtl"):
            raise ModuleNotFoundError("No module named 'amaranth'", name="amaranth")
        return real(name, *args)

    monkeypatch.setattr(extras.importlib, "import_module", no_amaranth)
    for command in ("generate", "synth"):
        line = assert_refused([command], guarded, capsys)
        assert line == (f"niti-hw {command}: error: niti-hw {command} needs the rtl extra "
                        "(amaranth is not installed): pip install 'niti-hw[rtl]'")


def test_a_command_whose_module_needs_a_missing_extra_says_which(guarded, capsys, monkeypatch):
    import niti_hw.cli as cli

    real = cli.importlib.import_module

    def fake(name, *args):
        if name == "niti_hw.commands.synth":
            raise ModuleNotFoundError("No module named 'amaranth'", name="amaranth")
        if name == "niti_hw.commands.generate":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args)

    monkeypatch.setattr(cli.importlib, "import_module", fake)
    line = assert_refused(["synth", "--jobs", "2"], guarded, capsys)
    assert line.endswith("niti-hw synth needs the rtl extra (amaranth is not installed): "
                         "pip install 'niti-hw[rtl]'")
    assert_refused(["generate"], guarded, capsys, command="", match="invalid choice: 'generate'")


def registered_commands():
    from niti_hw.cli import build_parser

    [subparsers] = [action for action in build_parser()._actions
                    if action.dest == "command"]
    return sorted(subparsers.choices)


@pytest.mark.parametrize("command", registered_commands())
def test_every_command_refuses_an_unknown_flag_in_one_line(guarded, capsys, command):
    assert {"train", "evaluate", "generate", "synth"} <= set(registered_commands())
    positional = {"evaluate": ["run.npz"], "explore": ["space.toml"]}.get(command, [])
    line = assert_refused([command, *positional, "--no-such-flag=1"], guarded, capsys)
    assert line == (f"niti-hw {command}: error: unrecognized arguments: --no-such-flag=1 "
                    f"(see niti-hw {command} --help)")


def test_help_states_the_accepted_acc_bits_and_the_cache(capsys):
    from niti_hw.train import TrainConfig

    for argv in (["train", "--help"], ["--help"]):
        with pytest.raises(SystemExit):
            main(argv)
    text = " ".join(capsys.readouterr().out.split())
    assert "weight accumulation bits, 8..24" in text
    assert "~/.cache/niti-hw" in text and "NITI_HW_CACHE" in text
    assert TrainConfig(acc_bits=10).acc_bits == 10  # within 8..24, as the help says
