"""Shared fixtures: the checkout, the `optc` binary, the reference steps the Rust runtime made."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CONFORMANCE = ROOT.parent / "shared" / "conformance"


@pytest.fixture(scope="session")
def optc_bin() -> str:
    """The `optc` binary: the one `cargo test` built, or target/release/optc."""
    path = os.environ.get("OPTC_BIN") or str(ROOT / "target" / "release" / "optc")
    if not Path(path).exists():
        pytest.skip(f"no optc binary at {path} (run through `cargo test --release`)")
    return path


def references() -> list[Path]:
    """The reference steps written by tests/integration/python.rs (empty when run alone)."""
    folder = os.environ.get("OPTC_REFERENCES")
    return sorted(Path(folder).glob("*.json")) if folder else []


def run_optc(optc_bin: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([optc_bin, *args], input=stdin, capture_output=True, text=True, cwd=ROOT)


def floats(bits) -> np.ndarray:
    """float32 values from their bits."""
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def load_reference(path: Path) -> dict:
    return json.loads(path.read_text())


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bit for bit, every NaN the same (the backends may differ in NaN payloads)."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a.shape != b.shape:
        return False
    nan = np.isnan(a) & np.isnan(b)
    return bool(np.all((a.view(np.uint32) == b.view(np.uint32)) | nan))
