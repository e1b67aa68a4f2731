"""perf.energy: the default table, TOML overrides, and refusals that name the action."""

import pytest

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from niti_hw.perf.energy import DEFAULT_PJ, default_toml, load_energy, sram_pj_per_byte


def test_defaults_are_horowitz_45nm():
    assert DEFAULT_PJ["int8_mac"] == pytest.approx(0.3)
    assert DEFAULT_PJ["fp32_mac"] == pytest.approx(4.6)
    assert DEFAULT_PJ["sram_read_8kib_byte"] == 1.25
    assert DEFAULT_PJ["sram_read_32kib_byte"] == 2.5
    assert DEFAULT_PJ["sram_read_1024kib_byte"] == 12.5
    assert DEFAULT_PJ["dram_read_byte"] == 162.5


def test_sram_energy_passes_through_the_table_and_follows_the_power_law_between():
    for size, per_byte in ((8, 1.25), (32, 2.5), (1024, 12.5)):
        assert sram_pj_per_byte(DEFAULT_PJ, size) == pytest.approx((per_byte, per_byte))
    # 8 -> 32 KiB: energy x2 for size x4 (slope 1/2); 32 KiB -> 1 MiB: x5 for x32.
    assert sram_pj_per_byte(DEFAULT_PJ, 16)[0] == pytest.approx(1.25 * math.sqrt(2))
    assert sram_pj_per_byte(DEFAULT_PJ, 64)[0] == pytest.approx(2.5 * 5 ** (1 / 5))
    # Outside the table the nearest segment goes on: 4 MiB is 4x 1 MiB.
    assert sram_pj_per_byte(DEFAULT_PJ, 4096)[0] == pytest.approx(12.5 * 4 ** math.log(5, 32))
    assert sram_pj_per_byte(DEFAULT_PJ, 2)[0] == pytest.approx(1.25 / 2)


@given(st.floats(0.5, 2**20), st.floats(1.01, 8))
@settings(max_examples=100)
def test_sram_energy_grows_with_capacity(size, factor):
    """Continuous and increasing: a larger SRAM never costs less per byte."""
    assert sram_pj_per_byte(DEFAULT_PJ, size * factor)[0] > sram_pj_per_byte(DEFAULT_PJ, size)[0]


def test_default_toml_round_trips(tmp_path):
    path = tmp_path / "energy.toml"
    path.write_text(default_toml())
    assert load_energy(path) == DEFAULT_PJ


def write(tmp_path, body):
    path = tmp_path / "energy.toml"
    path.write_text(body)
    return path


def full_table(**changes):
    table = {**DEFAULT_PJ, **changes}
    return "[energy_pj]\n" + "".join(f"{k} = {v}\n" for k, v in table.items())


def test_override_is_read(tmp_path):
    assert load_energy(write(tmp_path, full_table(int8_mac=0.5)))["int8_mac"] == 0.5


@pytest.mark.parametrize("body, message", [
    (full_table() + "int4_mac = 0.1\n", r"unknown action\(s\) int4_mac; valid actions: int8_mac"),
    ("[energy_pj]\nint8_mac = 0.3\n", r"missing action\(s\) fp32_mac, int32_alu"),
    (full_table(int8_mac='"cheap"'), r"int8_mac must be a finite number of pJ >= 0; got 'cheap'"),
    (full_table(dram_read_byte=-1), r"dram_read_byte must be a finite number of pJ >= 0; got -1"),
    ("[energy_pj\n", r"is not valid TOML"),
    ("int8_mac = 0.3\n", r"must hold exactly one \[energy_pj\] table; got \['int8_mac'\]"),
])
def test_bad_files_are_refused(tmp_path, body, message):
    with pytest.raises(ValueError, match=message):
        load_energy(write(tmp_path, body))


def test_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(ValueError, match=r"not found; write one with `niti-hw estimate "
                                         r"--energy-defaults > energy.toml`"):
        load_energy(tmp_path / "nope.toml")
