"""A base install (no extras) trains, evaluates and prints its version; `generate`, `synth` and
`explore` say which extra to install.

The environment is a fresh virtual environment that sees only the project and the base
dependencies of pyproject.toml (with what they need in turn), linked from the test's own
environment: no network, a few seconds, and amaranth and torch are provably absent.
"""

from __future__ import annotations

import gzip
import importlib.metadata as metadata
import os
import struct
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def base_distributions(extras: tuple[str, ...] = ()) -> set[str]:
    """pyproject's dependencies (and those of `extras`) and theirs, as installed here (markers
    evaluated, no other extras)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = project["dependencies"] + [text for extra in extras
                                       for text in project["optional-dependencies"][extra]]
    todo = [Requirement(text) for text in texts]
    seen: set[str] = set()
    while todo:
        requirement = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = requirement.name.lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        todo += [Requirement(text) for text in metadata.distribution(name).requires or ()]
    return seen


def link_site(folder: Path, extras: tuple[str, ...] = ()) -> Path:
    """A folder holding links to the top-level files of every base distribution (and those of
    `extras`)."""
    folder.mkdir()
    for name in base_distributions(extras):
        distribution = metadata.distribution(name)
        for top in {Path(file).parts[0] for file in distribution.files or ()}:
            if top != ".." and not (folder / top).exists():
                (folder / top).symlink_to(distribution.locate_file(top))
    return folder


def write_idx_dataset(root: Path, n: int = 24) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir()
    for prefix in ("train", "t10k"):
        for kind, array in (("images-idx3", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)),
                            ("labels-idx1", rng.integers(0, 10, n, dtype=np.uint8))):
            header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            (root / f"{prefix}-{kind}-ubyte.gz").write_bytes(gzip.compress(header + array.tobytes()))
    return root


def base_venv(tmp_path: Path, extras: tuple[str, ...] = ()) -> Path:
    """The python of a fresh environment that sees the project and the base distributions."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    assert sysconfig.get_path("purelib") != purelib
    site = link_site(tmp_path / "site", extras)
    Path(purelib, "niti_hw_base.pth").write_text(f"{site}\n{ROOT}\n")
    return python


@pytest.mark.slow
def test_the_quick_tests_collect_without_the_extras(tmp_path):
    """Base install plus the dev extra: files that need amaranth, cocotb or torch are skipped,
    none fails to import."""
    python = base_venv(tmp_path, extras=("dev",))
    collected = subprocess.run(
        [python, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-m", "not sim and not synth", str(ROOT / "tests")],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)}, cwd=ROOT,
        capture_output=True, text=True, timeout=300)
    summary = collected.stdout.strip().splitlines()[-1]
    assert collected.returncode == 0 and "error" not in summary, collected.stdout[-3000:]
    assert "tests collected" in summary


@pytest.mark.slow
def test_base_install_trains_and_names_missing_extras(tmp_path):
    python = base_venv(tmp_path)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "MPLBACKEND": "Agg",
           "NITI_HW_CACHE": str(tmp_path / "cache")}

    def cli(*argv):
        return subprocess.run([python, "-m", "niti_hw.cli", *argv], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)

    probe = subprocess.run([python, "-c", "import importlib.util as u; print([u.find_spec(m) is "
                            "None for m in ('amaranth', 'torch', 'cocotb', 'numpy', 'niti_hw')])"],
                           env=env, capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "[True, True, True, False, False]"

    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("niti-hw ")
    data = write_idx_dataset(tmp_path / "digits")
    trained = cli("train", "--dataset", "idx", "--data-root", str(data), "--epochs", "1",
                  "--batch-size", "8", "--out", "run", "--quiet")
    assert trained.returncode == 0, trained.stderr
    assert "niti-int8" in trained.stdout and (tmp_path / "run" / "checkpoint.npz").is_file()
    evaluated = cli("evaluate", "run/checkpoint.npz", "--format", "json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert '"test_images": 24' in evaluated.stdout
    for argv, extra, package in ((["generate", "--out", "verilog"], "rtl", "amaranth"),
                                 (["synth", "--no-pnr"], "rtl", "amaranth"),
                                 (["train", "--baseline", "fp32", "--dataset", "idx",
                                   "--data-root", str(data), "--out", "twin"], "torch", "torch"),
                                 (["explore", "space.toml"], "explore", "distributed")):
        refused = cli(*argv)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert len(refused.stderr.splitlines()) == 1, refused.stderr
        assert f"needs the {extra} extra ({package} is not installed): " \
               f"pip install 'niti-hw[{extra}]'" in refused.stderr
    assert not (tmp_path / "verilog").exists() and not (tmp_path / "twin").exists()
    if (ROOT / "niti_hw" / "commands" / "estimate.py").exists():
        estimated = cli("estimate", "--model", "lenet5", "--format", "json")
        assert estimated.returncode == 0, estimated.stderr
        assert estimated.stdout.lstrip().startswith(("{", "["))
