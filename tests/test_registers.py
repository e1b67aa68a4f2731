"""The control register map (niti_hw/registers.py): validation, content from HardwareParams and the
datapath's cfg fields, the generated Markdown table in rtl/README.md, the C header and the CLI."""

from pathlib import Path

import pytest

from niti_hw.cli import main
from niti_hw.params import DEFAULT, ROUND_MODES, HardwareParams
from niti_hw.perf.timing import TENSOR_CFG_FIELDS
from niti_hw.register_docs import (CORE_README_BEGIN, CORE_README_END, README_BEGIN, README_END,
                                   c_header, markdown_table, readme_with_table)
from niti_hw.registers import (ACCESS_KINDS, CFG_REGISTERS, DEFAULT_PROGRAM_WORDS, MAGIC,
                               WORD_BITS, Field, Register, RegisterMap, core_register_map,
                               hardware_registers, register_map)

README = Path(__file__).resolve().parent.parent / "rtl" / "README.md"


def one(name="A", offset=0, fields=(Field("x", 0, 8, "RW"),)):
    return Register(name, offset, tuple(fields))


@pytest.mark.parametrize("registers, message", [
    ((one("A", 0), one("B", 0)), r"registers A and B overlap at offset 0x0"),
    ((one("A", 0), one("A", 4)), r"register name A is used twice"),
    ((one("A", 2),), r"register A: offset 0x2 must be a multiple of 4 in 0x0\.\.0xffc"),
    ((one("A", 0x1000),), r"offset 0x1000 must be a multiple of 4 in 0x0\.\.0xffc"),
    ((one(fields=[Field("x", 24, 9, "RW")]),), r"field 'x': bits 32:24 must lie within 31:0"),
    ((one(fields=[Field("x", 0, 0, "RW")]),), r"bits -1:0 must lie within 31:0 with a width"),
    ((one(fields=[Field("x", 0, 8, "RW"), Field("y", 7, 2, "RO")]),),
     r"field 'y': bits 8:7 overlap field 'x'"),
    ((one(fields=[Field("x", 0, 8, "RW"), Field("x", 8, 2, "RO")]),),
     r"its port name a_x is also that of register A, field 'x'"),
    ((one("A_B", 0, [Field("c", 0, 1, "RW")]), one("A", 4, [Field("b_c", 0, 1, "RW")])),
     r"port name a_b_c is also that of register A_B, field 'c': rename one"),
    ((one(fields=[Field("x", 0, 4, "RW", reset=16)]),), r"reset 16 does not fit in 4 bits"),
    ((one(fields=[Field("x", 0, 4, "WO")]),), r"access must be one of CONST, RO, RW, W1P, W1C"),
    ((one(fields=[Field("go", 0, 1, "W1P", reset=1)]),), r"a W1P field reads 0, so its reset"),
    ((one("2A"),), r"register name '2A' must be letters, digits and single underscores"),
    ((one(fields=[Field("a__b", 0, 1, "RW")]),), r"field 'a__b': a field name must be letters"),
    ((one(fields=[]),), r"register A has no fields"),
])
def test_bad_maps_are_refused_with_the_reason(registers, message):
    with pytest.raises(ValueError, match=message):
        RegisterMap(registers)


def test_the_map_of_the_default_parameters():
    regmap = register_map(DEFAULT)
    assert [r.name for r in regmap.registers][:6] == ["ID", "VERSION", "CTRL", "STATUS", "CYCLES",
                                                      "SCRATCH"]
    assert regmap["ID"].reset == MAGIC and MAGIC.to_bytes(4, "big") == b"NITI"
    offsets = [r.offset for r in regmap.registers]
    assert offsets == sorted(offsets)
    core = core_register_map(DEFAULT, DEFAULT_PROGRAM_WORDS)
    assert {f.access for m in (regmap, core) for r in m.registers for f in r.fields} == \
        set(ACCESS_KINDS)
    assert regmap.at(0x0D) is regmap["STATUS"] and regmap.at(0x18) is None
    assert regmap["CYCLES"].field("count").width == WORD_BITS
    with pytest.raises(KeyError, match="no register 'NOPE'; registers: ID, VERSION"):
        regmap["NOPE"]
    with pytest.raises(KeyError, match="register CTRL has no field 'stop'; fields: start, "):
        regmap["CTRL"].field("stop")


def test_cfg_registers_hold_exactly_the_datapath_cfg_fields():
    regmap = register_map(DEFAULT)
    mapped = {f.name: f.width for name, _ in CFG_REGISTERS for f in regmap[name].fields}
    assert mapped == TENSOR_CFG_FIELDS
    assert all(f.access == "RW" for name, _ in CFG_REGISTERS for f in regmap[name].fields)


@pytest.mark.parametrize("params", [DEFAULT, HardwareParams(rows=64, cols=32, lanes=4, acc_bits=20,
                                                            lfsr_lanes=256, lfsr_seed=2**32 - 1,
                                                            round_mode="nearest",
                                                            tensor_buffer_words=2**30)])
def test_hardware_parameter_registers_hold_the_params(params):
    regmap = register_map(params)

    def value(reg, field):
        f = regmap[reg].field(field)
        assert f.access == "CONST"
        return (regmap[reg].reset & f.mask) >> f.lsb

    assert (value("HW_ARRAY", "rows"), value("HW_ARRAY", "cols")) == (params.rows, params.cols)
    assert (value("HW_LANES", "lanes"), value("HW_LANES", "lfsr_lanes")) == \
        (params.lanes, params.lfsr_lanes)
    assert value("HW_NUMBERS", "acc_bits") == params.acc_bits
    assert ROUND_MODES[value("HW_NUMBERS", "round_mode")] == params.round_mode
    assert value("HW_TENSOR_WORDS", "words") == params.tensor_buffer_words
    assert value("HW_MAX_K", "max_k") == params.max_k
    assert value("HW_LFSR_SEED", "seed") == params.lfsr_seed


def test_readme_table_is_the_generated_one():
    text = README.read_text()
    assert readme_with_table(text, register_map(DEFAULT)) == text, \
        "rtl/README.md's register map is stale: run `niti-hw regmap --readme rtl/README.md`"
    assert markdown_table(register_map(DEFAULT)) in text


def test_readme_without_markers_is_refused():
    with pytest.raises(ValueError, match="the README has no register map markers: put the lines"):
        readme_with_table("# title\n", register_map(DEFAULT))


def test_c_header_defines_every_field():
    regmap = register_map(DEFAULT)
    text = c_header(regmap)
    assert "#define NITI_HW_STATUS_OFFSET 0x00cu" in text
    assert "#define NITI_HW_CTRL_SOFT_RESET_MASK 0x00000002u" in text
    assert "#define NITI_HW_ID_RESET 0x4e495449u" in text
    fields = sum(len(r.fields) for r in regmap.registers)
    assert text.count("_SHIFT ") == fields and text.count("_OFFSET ") == len(regmap.registers)


def test_cli_regmap_prints_and_refreshes(tmp_path, capsys):
    assert main(["regmap"]) == 0
    assert capsys.readouterr().out == markdown_table(register_map(DEFAULT))
    assert main(["regmap", "--format", "c", "--rows", "4"]) == 0
    assert "#define NITI_HW_HW_ARRAY_RESET 0x00080004u" in capsys.readouterr().out
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_BEGIN}\nold table\n{README_END}\nrest\n")
    assert main(["regmap", "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith(f"{README_END}\nrest\n")
    assert "old table" not in text and "| `0x0000` | ID |" in text
    assert main(["regmap", "--readme", str(readme), "--format", "c"]) == 2
    assert "--readme takes the Markdown table" in capsys.readouterr().err


def test_the_core_map_shares_the_hardware_registers_and_its_readme_table_is_generated():
    core = core_register_map(DEFAULT, DEFAULT_PROGRAM_WORDS)
    datapath = register_map(DEFAULT)
    for reg in hardware_registers(DEFAULT):
        assert core[reg.name] == reg == datapath[reg.name]
    assert core["ID"] == datapath["ID"] and core["VERSION"].field("core").reset == 1
    assert core["EXP_VALUE"].field("value").access == "RWH"
    text = README.read_text()
    assert readme_with_table(text, core, "core") == text, \
        "rtl/README.md's core register map is stale: run " \
        "`niti-hw regmap --top core --readme rtl/README.md`"
    assert text.index(CORE_README_BEGIN) < text.index(CORE_README_END)


def test_cli_regmap_of_the_core(tmp_path, capsys):
    assert main(["regmap", "--top", "core", "--format", "c"]) == 0
    text = capsys.readouterr().out
    assert text == c_header(core_register_map(DEFAULT, DEFAULT_PROGRAM_WORDS), "core")
    assert "#ifndef NITI_HW_CORE_REGS_H" in text and "regmap --top core --format c" in text
    assert "#define NITI_HW_EXP_VALUE_OFFSET 0x028u" in text
    readme = tmp_path / "README.md"
    readme.write_text(f"{README_BEGIN}\n{README_END}\n{CORE_README_BEGIN}\nstale table\n"
                      f"{CORE_README_END}\n")
    assert main(["regmap", "--top", "core", "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "| `0x0028` | EXP_VALUE |" in text and "stale table" not in text
    assert text.startswith(f"{README_BEGIN}\n{README_END}\n")  # the datapath's untouched
