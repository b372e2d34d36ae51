"""The package as a user gets it: the wheel built from this tree, installed in fresh
virtual environments — the client alone, and with the `backend` extra (plus what the
notebooks need to run as a kernel there).

Packages come through pip as configured on the machine (its cache and wheel directories
make a second install quick); nothing of this checkout is on the path of those venvs.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KERNEL = "live-listener-wheel"  # the notebooks' kernel inside the venv with the extra


@dataclass(frozen=True)
class Venv:
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def cli(self) -> Path:
        return self.root / "bin" / "live-listener"

    @property
    def jupyter_path(self) -> Path:
        return self.root / "share" / "jupyter"

    def run(
        self, *args: str, cwd: Path | None = None, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=cwd,
            timeout=timeout,
        )


def build_wheel(out: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
    )
    return next(out.glob("live_listener-*.whl"))


def make_venv(root: Path, *requirements: str) -> Venv:
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    venv = Venv(root)
    subprocess.run([str(venv.python), "-m", "pip", "install", "--quiet", *requirements], check=True)
    return venv


def client_venv(root: Path, wheel: Path) -> Venv:
    """`pip install live-listener`: the client only."""
    return make_venv(root, str(wheel))


def full_venv(root: Path, wheel: Path) -> Venv:
    """`pip install live-listener[backend]`, and a Jupyter kernel for the notebooks."""
    venv = make_venv(root, f"{wheel}[backend]", "ipykernel", "matplotlib")
    subprocess.run(
        [str(venv.python), "-m", "ipykernel", "install", "--prefix", str(root), "--name", KERNEL],
        check=True,
        capture_output=True,
    )
    return venv
