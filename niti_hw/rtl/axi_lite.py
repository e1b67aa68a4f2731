"""AXI4-Lite slave of a `RegisterMap` (niti_hw/registers.py): the registers, nothing else."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from niti_hw.perf.timing import AXI_LITE_ACCESS_CYCLES, AXI_LITE_LATENCY
from niti_hw.registers import WORD_BITS, WORD_BYTES, RegisterMap, port_name

PREFIX = "s_axil"
"""Port prefix: the Verilog ports are `s_axil_awaddr`, ... as cocotbext-axi's
`AxiLiteBus.from_prefix(dut, "s_axil")` and vendor tools expect them."""
RESP_OKAY, RESP_SLVERR = 0, 2
if (AXI_LITE_LATENCY, AXI_LITE_ACCESS_CYCLES) != (1, 2):
    raise RuntimeError("rtl/axi_lite.py registers each response once and holds one access per "
                       "channel: perf.timing's AXI4-Lite section must say so")
PROT_BITS, RESP_BITS = 3, 2


def axi_lite_members(addr_bits: int) -> dict:
    """The AXI4-Lite slave ports as flat members (a nested signature would be named
    `s_axil__awaddr` in Verilog). AWPROT/ARPROT are taken and ignored."""
    members = {
        "awaddr": In(addr_bits), "awprot": In(PROT_BITS), "awvalid": In(1), "awready": Out(1),
        "wdata": In(WORD_BITS), "wstrb": In(WORD_BYTES), "wvalid": In(1), "wready": Out(1),
        "bresp": Out(RESP_BITS), "bvalid": Out(1), "bready": In(1),
        "araddr": In(addr_bits), "arprot": In(PROT_BITS), "arvalid": In(1), "arready": Out(1),
        "rdata": Out(WORD_BITS), "rresp": Out(RESP_BITS), "rvalid": Out(1), "rready": In(1),
    }
    return {f"{PREFIX}_{name}": member for name, member in members.items()}


def field_members(regmap: RegisterMap) -> dict:
    """One port per field (`<register>_<field>`, lower case): RW an output holding the stored
    value, RO an input, W1P an output strobe, W1C an input (the status the hardware holds) and
    an output strobe `<port>_clear` (the bits written 1), RWH an input (the hardware's value),
    an output strobe `<port>_write` and the value written, `<port>_wdata`; CONST fields have no
    port."""
    members = {}
    for reg in regmap.registers:
        for f in reg.fields:
            name = port_name(reg, f)
            if f.access == "RW":
                members[name] = Out(f.width, init=f.reset)
            elif f.access in ("RO", "W1C", "RWH"):
                members[name] = In(f.width)
            elif f.access == "W1P":
                members[name] = Out(f.width)
            if f.access == "W1C":
                members[f"{name}_clear"] = Out(f.width)
            if f.access == "RWH":
                members[f"{name}_write"] = Out(1)
                members[f"{name}_wdata"] = Out(f.width)
    return members


class AxiLiteRegisters(wiring.Component):
    """32-bit AXI4-Lite slave over the registers of `regmap`, byte-addressed.

    Latency: `AXI_LITE_LATENCY` cycle from a read's AR handshake to RVALID, and from the later of
    a write's AW and W handshakes to BVALID; the written RW fields and the W1P/W1C strobes change
    on the same edge as BVALID rises. AW and W may arrive in either order or together; one write
    and one read are outstanding at most (`AXI_LITE_ACCESS_CYCLES` cycles per access with the
    response taken at once), reads and writes independent of each other. BVALID/RVALID and their
    payload hold until accepted. The low two address bits are ignored (WSTRB selects the bytes).

    A mapped word answers OKAY: RW fields take the strobed bytes, W1P/W1C fields strobe the bits
    written 1 in strobed bytes, an RWH field with a strobed byte strobes `_write` with its value
    (the strobed bytes, the rest as read) in `_wdata`, CONST and RO fields ignore writes. Any
    other word of the window answers SLVERR, reads 0 and changes nothing.
    """

    def __init__(self, regmap: RegisterMap):
        self.regmap = regmap
        super().__init__({**axi_lite_members(regmap.addr_bits), **field_members(regmap)})

    def port(self, name: str):
        return getattr(self, f"{PREFIX}_{name}")

    def elaborate(self, platform):
        m = Module()
        axi = self.port
        word = slice(2, self.regmap.addr_bits)  # the word address: WORD_BYTES == 4

        # Write: AW and W are each held until the other has come; then the write commits.
        aw_have, aw_addr = Signal(), Signal(self.regmap.addr_bits)
        w_have, w_data, w_strb = Signal(), Signal(WORD_BITS), Signal(WORD_BYTES)
        aw_fire, w_fire, commit = Signal(), Signal(), Signal()
        m.d.comb += [
            axi("awready").eq(~aw_have & ~axi("bvalid")),
            axi("wready").eq(~w_have & ~axi("bvalid")),
            aw_fire.eq(axi("awvalid") & axi("awready")),
            w_fire.eq(axi("wvalid") & axi("wready")),
            commit.eq((aw_have | aw_fire) & (w_have | w_fire)),
        ]
        addr = Mux(aw_have, aw_addr, axi("awaddr"))
        data = Mux(w_have, w_data, axi("wdata"))
        strb = Mux(w_have, w_strb, axi("wstrb"))
        bits = Signal(WORD_BITS)  # the strobed bits of the word
        m.d.comb += bits.eq(Cat(strb[n].replicate(8) for n in range(WORD_BYTES)))
        with m.If(commit):
            m.d.sync += [aw_have.eq(0), w_have.eq(0), axi("bvalid").eq(1)]
        with m.Else():
            with m.If(aw_fire):
                m.d.sync += [aw_have.eq(1), aw_addr.eq(axi("awaddr"))]
            with m.If(w_fire):
                m.d.sync += [w_have.eq(1), w_data.eq(axi("wdata")), w_strb.eq(axi("wstrb"))]
        with m.If(axi("bvalid") & axi("bready")):
            m.d.sync += axi("bvalid").eq(0)

        strobes = []  # every W1P and W1C strobe is 0 but in the cycle after its write
        for reg in self.regmap.registers:
            for f in reg.fields:
                name = port_name(reg, f)
                if f.access in ("W1P", "W1C", "RWH"):
                    suffix = {"W1P": "", "W1C": "_clear", "RWH": "_write"}[f.access]
                    strobes.append(getattr(self, name + suffix))
        m.d.sync += [strobe.eq(0) for strobe in strobes]
        with m.If(commit):
            with m.Switch(addr[word]):
                for reg in self.regmap.registers:
                    with m.Case(reg.offset // WORD_BYTES):
                        m.d.sync += axi("bresp").eq(RESP_OKAY)
                        for f in reg.fields:
                            self._write_field(m, reg, f, data, bits)
                with m.Default():
                    m.d.sync += axi("bresp").eq(RESP_SLVERR)

        # Read: the word is selected and registered with RVALID.
        m.d.comb += axi("arready").eq(~axi("rvalid"))
        with m.If(axi("arvalid") & axi("arready")):
            m.d.sync += axi("rvalid").eq(1)
            with m.Switch(axi("araddr")[word]):
                for reg in self.regmap.registers:
                    with m.Case(reg.offset // WORD_BYTES):
                        m.d.sync += [axi("rdata").eq(self._read_word(reg)),
                                     axi("rresp").eq(RESP_OKAY)]
                with m.Default():
                    m.d.sync += [axi("rdata").eq(0), axi("rresp").eq(RESP_SLVERR)]
        with m.Elif(axi("rready")):
            m.d.sync += axi("rvalid").eq(0)
        return m

    def _write_field(self, m, reg, f, data, bits):
        name = port_name(reg, f)
        value, enable = data[f.lsb:f.msb + 1], bits[f.lsb:f.msb + 1]
        if f.access == "RW":
            port = getattr(self, name)
            m.d.sync += port.eq((port & ~enable) | (value & enable))
        elif f.access == "W1P":
            m.d.sync += getattr(self, name).eq(value & enable)
        elif f.access == "W1C":
            m.d.sync += getattr(self, f"{name}_clear").eq(value & enable)
        elif f.access == "RWH":
            read = getattr(self, name)
            m.d.sync += [getattr(self, f"{name}_write").eq(enable.any()),
                         getattr(self, f"{name}_wdata").eq((read & ~enable) | (value & enable))]

    def _read_word(self, reg):
        word = Const(0, WORD_BITS)
        for f in reg.fields:
            if f.access == "CONST":
                value = Const(f.reset, f.width)
            elif f.access == "W1P":
                continue
            else:
                value = getattr(self, port_name(reg, f))
            word = word | (value.as_unsigned() << f.lsb)
        return word

