"""perf.energy: the default table, TOML overrides, and refusals that name the action."""

import pytest

from niti_hw.perf.energy import DEFAULT_PJ, default_toml, load_energy, sram_class


def test_defaults_are_horowitz_45nm():
    assert DEFAULT_PJ["int8_mac"] == pytest.approx(0.3)
    assert DEFAULT_PJ["fp32_mac"] == pytest.approx(4.6)
    assert DEFAULT_PJ["sram_read_8kib_byte"] == 1.25
    assert DEFAULT_PJ["sram_read_32kib_byte"] == 2.5
    assert DEFAULT_PJ["sram_read_1024kib_byte"] == 12.5
    assert DEFAULT_PJ["dram_read_byte"] == 162.5


def test_sram_size_classes():
    assert [sram_class(s) for s in (1, 8, 9, 32, 64, 1024, 4096)] == [8, 8, 32, 32, 1024, 1024, 1024]


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
