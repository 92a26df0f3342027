"""Fixtures for the browser tests: a fresh JupyterLab on loopback, Debian's Chromium, a gateway."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from jupyterlab_page import ARTIFACTS, Lab
from playwright.sync_api import BrowserContext, sync_playwright
from waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
T = TypeVar("T")
CHROMIUM = Path("/usr/bin/chromium")
# Flags that let Debian's Chromium run headless with no network and no first-run UI.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Settings for a fresh JupyterLab: every cell stays in the DOM, no news prompt, no update check.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
DISABLED_PLUGINS = {"@jupyterlab/apputils-extension:announcements": True}


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium; `make browser-deps` (a prerequisite of `make test`) installs it."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `make browser-deps` (apt-get install -y chromium)",
            pytrace=False,
        )
    return CHROMIUM


# Module scope, not session: Playwright's sync API keeps an event loop running on the main
# thread while it is open, which would break every asyncio test that runs after this module.
@pytest.fixture(scope="module")
def gateway_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An embedded gateway for the session, as the env vars the magic and the kernel read."""
    from linkis_magic.demo import embedded_gateway

    with embedded_gateway(tmp_path_factory.mktemp("gateway"), user="browser") as gateway:
        yield gateway.env()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, gateway_env: dict[str, str]) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 with fresh config, runtime, data, settings and workspace dirs.

    Kernels installed in the venv (sys-prefix) stay visible; kernels of the user running the
    tests do not. The root dir holds a copy of notebooks/, so the tests never write into it.
    """
    base = tmp_path_factory.mktemp("lab")
    dirs = {name: base / name for name in ("config", "runtime", "data", "settings", "work", "ipy")}
    for path in dirs.values():
        path.mkdir()
    root_dir = base / "root"
    shutil.copytree(NOTEBOOKS, root_dir)
    _write_lab_settings(dirs["config"], dirs["settings"])

    token = secrets.token_hex(16)
    env = {
        **os.environ,
        **gateway_env,
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["work"]),
        "IPYTHONDIR": str(dirs["ipy"]),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    env.pop("LINKIS_TOKEN", None)
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",
        f"--ServerApp.root_dir={root_dir}",
        f"--IdentityProvider.token={token}",
        "--ServerApp.allow_root=True",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    log_path = base / "jupyterlab.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            info = wait_for(
                lambda: _server_info(dirs["runtime"], server),
                timeout=60,
                what="JupyterLab to write its runtime file",
            )
        except (RuntimeError, TimeoutError) as exc:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
            pytest.fail(f"{exc}; its log ends:\n{tail}", pytrace=False)
        yield Lab(url=str(info["url"]), token=token, root_dir=root_dir)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _write_lab_settings(config_dir: Path, settings_dir: Path) -> None:
    for relative, values in LAB_SETTINGS.items():
        path = settings_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    labconfig = config_dir / "labconfig"
    labconfig.mkdir()
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": DISABLED_PLUGINS})
    )


def _server_info(runtime_dir: Path, server: subprocess.Popen[bytes]) -> dict[str, object] | None:
    if server.poll() is not None:
        raise RuntimeError(f"jupyter lab exited with code {server.returncode}")
    for path in runtime_dir.glob("jpserver-*.json"):
        try:
            info: dict[str, object] = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        if info.get("pid") == server.pid:
            return info
    return None


@pytest.fixture(scope="module")
def browser(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """A Chromium context with a fresh user data dir, driven by Playwright."""
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1400},
        )
        try:
            yield context
        finally:
            context.close()
