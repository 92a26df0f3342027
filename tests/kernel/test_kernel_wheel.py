"""The wheel ships the kernelspecs as shared-data: installing it alone makes Jupyter find them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from linkis_magic.kernelspecs import KERNELSPECS, LOGO_FILES, kernel_json

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*argv: str | Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(arg) for arg in argv],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_wheel_installed_in_a_fresh_venv_brings_the_kernelspecs(tmp_path: Path) -> None:
    python3 = shutil.which("python3") or sys.executable
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, ROOT)
    (wheel,) = dist.glob("linkis_magic-*.whl")
    venv = tmp_path / "fresh"
    run(python3, "-m", "venv", "--without-pip", venv)
    venv_python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", venv_python, "install", "--no-deps", wheel)

    # Where pip put the shared-data: this venv's prefix, as Jupyter's env search path expects.
    prefix = Path(run(venv_python, "-c", "import sys; print(sys.prefix)").strip())
    kernels = prefix / "share" / "jupyter" / "kernels"
    for name, spec in KERNELSPECS.items():
        assert json.loads((kernels / name / "kernel.json").read_text()) == kernel_json(spec)
        for logo in LOGO_FILES:
            assert (kernels / name / logo).stat().st_size > 0

    # Jupyter finds them there: `jupyter kernelspec list` with that data directory on its path.
    env = {**os.environ, "JUPYTER_PATH": str(prefix / "share" / "jupyter")}
    listed = json.loads(run(BIN / "jupyter", "kernelspec", "list", "--json", env=env))[
        "kernelspecs"
    ]
    for name, spec in KERNELSPECS.items():
        assert Path(listed[name]["resource_dir"]) == kernels / name
        assert listed[name]["spec"]["display_name"] == spec.display_name
        assert listed[name]["spec"]["language"] == spec.language
