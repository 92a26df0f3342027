"""The wheel ships the kernelspecs as shared-data: installing it alone makes Jupyter find them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from linkis_magic.kernelspecs import KERNELSPECS, LOGO_FILES, kernel_json

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SERVER_URL = re.compile(r"(http://127\.0\.0\.1:\d+)/")

pytestmark = [pytest.mark.slow]


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


@pytest.fixture(scope="module")
def wheel_prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel, install it alone (no dependencies) into a fresh venv; return its prefix."""
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, ROOT)
    (wheel,) = dist.glob("linkis_magic-*.whl")
    venv = tmp / "fresh"
    run(shutil.which("python3") or sys.executable, "-m", "venv", "--without-pip", venv)
    venv_python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", venv_python, "install", "--no-deps", wheel)
    return Path(run(venv_python, "-c", "import sys; print(sys.prefix)").strip())


@pytest.mark.timeout(300)
def test_wheel_installed_in_a_fresh_venv_brings_the_kernelspecs(wheel_prefix: Path) -> None:
    # Where pip put the shared-data: the venv's prefix, as Jupyter's env search path expects.
    kernels = wheel_prefix / "share" / "jupyter" / "kernels"
    for name, spec in KERNELSPECS.items():
        assert json.loads((kernels / name / "kernel.json").read_text()) == kernel_json(spec)
        for logo in LOGO_FILES:
            assert (kernels / name / logo).stat().st_size > 0

    # Jupyter finds them there: `jupyter kernelspec list` with that data directory on its path.
    env = {**os.environ, "JUPYTER_PATH": str(wheel_prefix / "share" / "jupyter")}
    listed = json.loads(run(BIN / "jupyter", "kernelspec", "list", "--json", env=env))[
        "kernelspecs"
    ]
    for name, spec in KERNELSPECS.items():
        assert Path(listed[name]["resource_dir"]) == kernels / name
        assert listed[name]["spec"]["display_name"] == spec.display_name
        assert listed[name]["spec"]["language"] == spec.language


@pytest.fixture
def jupyter_server(wheel_prefix: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``jupyter server`` on a free port that sees the wheel's data directory; (url, token)."""
    token = "kernel-test-token"
    env = {**os.environ, "JUPYTER_PATH": str(wheel_prefix / "share" / "jupyter")}
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "config")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    proc = subprocess.Popen(
        [
            str(BIN / "jupyter"),
            "server",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port=0",
            f"--IdentityProvider.token={token}",
            "--ServerApp.open_browser=False",
            "--ServerApp.allow_root=True",
            f"--ServerApp.root_dir={tmp_path}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    found = threading.Event()
    url: list[str] = []
    output: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            output.append(line)
            match = SERVER_URL.search(line)
            if match and not found.is_set():
                url.append(match.group(1))
                found.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 90
        while not found.wait(0.1):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("jupyter server did not start:\n" + "".join(output))
        yield url[0], token
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        reader.join(10)
        assert proc.stderr is not None
        proc.stderr.close()


@pytest.mark.timeout(300)
def test_jupyter_server_offers_them_to_the_launcher_with_their_logos(
    jupyter_server: tuple[str, str],
) -> None:
    url, token = jupyter_server
    headers = {"Authorization": f"token {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        specs = http.get("/api/kernelspecs").json()["kernelspecs"]
        for name, spec in KERNELSPECS.items():
            model = specs[name]
            assert model["spec"]["display_name"] == spec.display_name
            assert set(model["resources"]) >= {"logo-32x32", "logo-64x64", "logo-svg"}
            svg = http.get(model["resources"]["logo-svg"])
            png = http.get(model["resources"]["logo-64x64"])
            assert svg.status_code == 200
            assert svg.headers["content-type"].startswith("image/svg+xml")
            assert spec.color in svg.text
            assert png.status_code == 200
            assert png.content.startswith(b"\x89PNG")
