"""Formal equivalence of two generated Verilog texts of one unit (yosys `equiv_make`,
`equiv_simple`): proves that a change to the Amaranth source (a refactor, registers given names)
left the top module's hardware unchanged, cycle for cycle, with no simulation.

Only the top module is compared. Its submodules must be identical texts in both designs and are
black boxes (their ports are compared, not their insides): a change inside one is compared by
generating that unit on its own. Wires named `$N` (Amaranth's temporaries, numbered by statement
order) are hidden so that they match by function, not by name; registers match by name, so a
register renamed between the two designs is unmatched, and what it feeds is proven from up to
`seq` cycles of its inputs' history. Unproven cells mean "not shown equivalent": a real difference,
or one that needs a longer history (raise `seq`). No induction: it has no model of a black box.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from niti_hw.rtl.synth import _run, tool

_MODULE = re.compile(r"^module (\S+)\s*\(.*?^endmodule\n", re.S | re.M)
_STATUS = re.compile(r"Of those cells (\d+) are proven and (\d+) are unproven")


@dataclass(frozen=True)
class Equivalence:
    proven: int
    unproven: int

    @property
    def equivalent(self) -> bool:
        return self.unproven == 0 and self.proven > 0


def modules(verilog: str) -> dict[str, str]:
    """Module name -> its text, in the order written."""
    return {match.group(1): match.group(0) for match in _MODULE.finditer(verilog)}


def _script(top: str, submodules: list[str], seq: int) -> str:
    prepare = "hierarchy -top {top}; proc; opt_clean; rename -hide w:$*"
    lines = []
    for side in ("gold", "gate"):
        lines += [f"read_verilog -sv {side}.v", prepare.format(top=top), f"rename {top} {side}",
                  f"design -stash {side}_design"]
    lines += ["design -copy-from gold_design -as gold gold",
              "design -copy-from gate_design -as gate gate"]
    for name in submodules:  # from gold: they are the same text in both
        lines.append(f"design -copy-from gold_design -as {name} {name}")
    if submodules:
        lines.append("blackbox " + " ".join(submodules))
    lines += ["equiv_make gold gate equiv", "hierarchy -top equiv", f"equiv_simple -seq {seq}",
              "equiv_status"]
    return "\n".join(lines) + "\n"


def prove_equivalent(gold: str, gate: str, top: str, work: Path, seq: int = 5) -> Equivalence:
    """Compare module `top` of two Verilog texts; `work` receives the files and yosys's log."""
    gold_modules, gate_modules = modules(gold), modules(gate)
    for side, found in (("gold", gold_modules), ("gate", gate_modules)):
        if top not in found:
            raise ValueError(f"the {side} Verilog has no module {top!r}; it has "
                             f"{', '.join(found) or 'none'}")
    submodules = [name for name in gold_modules if name != top]
    for name in submodules + [n for n in gate_modules if n != top and n not in gold_modules]:
        if gold_modules.get(name) != gate_modules.get(name):
            raise ValueError(f"submodule {name} differs between the two designs: only {top} is "
                             f"compared, with its submodules as black boxes; compare {name} as a "
                             f"unit of its own")
    work.mkdir(parents=True, exist_ok=True)
    (work / "gold.v").write_text(gold)
    (work / "gate.v").write_text(gate)
    (work / "equiv.ys").write_text(_script(top, [_escaped(n) for n in submodules], seq))
    log = _run([tool("yosys"), "-s", "equiv.ys"], work, "equiv.log")
    status = _STATUS.findall(log)
    if not status:
        raise ChildProcessError(f"yosys printed no equivalence status (see {work / 'equiv.log'})")
    proven, unproven = map(int, status[-1])
    return Equivalence(proven, unproven)


def _escaped(name: str) -> str:
    """A module name as a yosys command takes it (`\\datapath.array` -> `datapath.array`)."""
    return name.lstrip("\\")
