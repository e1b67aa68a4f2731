"""`niti_hw.rtl.equiv`: the equivalence check proves a design equal to itself and to a copy with
its temporaries renumbered, finds a changed compare, and refuses a changed submodule."""

import re

import pytest

pytest.importorskip("amaranth", reason="needs the rtl extra: pip install 'niti-hw[rtl]'")

from niti_hw.params import HardwareParams  # noqa: E402
from niti_hw.rtl.equiv import modules, prove_equivalent  # noqa: E402
from niti_hw.rtl.verilog import generate  # noqa: E402

pytestmark = pytest.mark.synth
SMALL = HardwareParams(rows=2, cols=4, lanes=2, lfsr_lanes=4, tensor_buffer_words=32)


@pytest.fixture(scope="module")
def datapath() -> str:
    return generate("datapath", SMALL)


def test_a_design_is_equivalent_to_itself_with_temporaries_renumbered(tmp_path, datapath):
    top = modules(datapath)["datapath"]
    renumbered = datapath.replace(top, re.sub(r"\\\$(\d+) ",
                                              lambda m: f"\\${int(m.group(1)) + 100000} ", top))
    assert renumbered != datapath
    result = prove_equivalent(datapath, renumbered, "datapath", tmp_path)
    assert result.equivalent and result.proven > 1000


def test_a_changed_compare_is_not_equivalent(tmp_path, datapath):
    """The operand side's last-column flag from `<=` to `<`: one register differs."""
    pattern = re.compile(r"(= in_n_left) <= ")
    assert len(pattern.findall(datapath)) == 1
    result = prove_equivalent(datapath, pattern.sub(r"\1 < ", datapath), "datapath", tmp_path)
    assert not result.equivalent and result.unproven >= 1


def test_a_changed_submodule_is_refused(tmp_path, datapath):
    pad = modules(datapath)["\\datapath.pad"]
    changed = datapath.replace(pad, pad.replace("wr_en", "wr_enable"))
    with pytest.raises(ValueError, match=r"submodule \\datapath.pad differs between the two "
                                         r"designs: only datapath is compared"):
        prove_equivalent(datapath, changed, "datapath", tmp_path)
    with pytest.raises(ValueError, match="the gold Verilog has no module 'core'"):
        prove_equivalent(datapath, datapath, "core", tmp_path)
