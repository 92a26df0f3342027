"""The `make demo` and `make lab` runners (linkis_magic.demo): what they print, run and serve."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
from waiting import wait_for

from linkis_magic.demo import Gateway, kernel_env, summarize, widget_lines


def _model(name: str, **state: Any) -> dict[str, Any]:
    return {"model_name": name, "model_module": "@jupyter-widgets/controls", "state": state}


def test_widget_lines_read_the_final_view_and_skip_hidden_widgets() -> None:
    state = {
        "root": _model(
            "VBoxModel",
            children=["IPY_MODEL_head", "IPY_MODEL_row", "IPY_MODEL_stages", "IPY_MODEL_log"],
        ),
        "head": _model(
            "HTMLModel", value="<b>Linkis</b> spark / sql &middot; taskID <code>7</code>"
        ),
        "row": _model("HBoxModel", children=["IPY_MODEL_bar", "IPY_MODEL_pct", "IPY_MODEL_btn"]),
        "bar": _model("FloatProgressModel", value=0.5, max=1.0),
        "pct": _model("LabelModel", value="50%"),
        "btn": _model("HTMLModel", value="Cancel", layout="IPY_MODEL_hidden"),
        "hidden": {"model_name": "LayoutModel", "state": {"display": "none"}},
        "stages": _model("HTMLModel", value="<table><tr><td>stage-1</td><td>4</td></tr></table>"),
        "log": _model(
            "HTMLModel", value="<pre>" + "\n".join(f"line {i}" for i in range(9)) + "</pre>"
        ),
    }

    lines = widget_lines("root", state)

    assert lines == [
        "Linkis spark / sql · taskID 7",
        "progress bar 50%",
        "stage-1 4",
        "(9 lines, the last: line 8)",
    ]


def test_summarize_shows_cells_text_errors_and_table_heads() -> None:
    table = "\n".join(["   a  b"] + [f"{i}  {i}  x" for i in range(20)])
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# not shown"),
            nbformat.v4.new_code_cell(
                "%%linkis spark sql\nselect 1",
                outputs=[
                    nbformat.v4.new_output("stream", name="stdout", text="hello\n"),
                    nbformat.v4.new_output(
                        "execute_result", {"text/plain": table}, execution_count=1
                    ),
                ],
            ),
            nbformat.v4.new_code_cell(
                "1/0",
                outputs=[nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="no")],
            ),
        ]
    )

    text = summarize(notebook)

    assert "not shown" not in text
    assert text.startswith("[2] %%linkis spark sql\n    hello\n       a  b\n    0  0  x")
    assert "... (13 more lines)" in text
    assert "[3] 1/0\n    ERROR ZeroDivisionError: no" in text


def test_kernel_env_points_at_the_gateway_and_drops_a_token() -> None:
    gateway = Gateway(url="http://127.0.0.1:1", user="demo", password="s3cret-pw")
    env = kernel_env(gateway, {"LINKIS_TOKEN": "tok", "PATH": "/bin"})

    assert env == {
        "PATH": "/bin",
        "LINKIS_GATEWAY": "http://127.0.0.1:1",
        "LINKIS_USER": "demo",
        "LINKIS_PASSWORD": "s3cret-pw",
    }
    assert "s3cret-pw" not in repr(gateway)


@pytest.mark.timeout(300)
def test_demo_fails_when_a_cell_fails(tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("%load_ext linkis_magic"),
            nbformat.v4.new_code_cell(
                "%%linkis python\nraise ValueError('no such region: atlantis')"
            ),
            nbformat.v4.new_code_cell("print('never runs')"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    path = tmp_path / "failing.ipynb"
    nbformat.write(notebook, path)
    out = tmp_path / "out"

    result = subprocess.run(
        [sys.executable, "-m", "linkis_magic.cli", "demo", str(path), "--output-dir", str(out)],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "A cell failed" in result.stderr
    assert "JobError" in result.stderr
    assert "no such region: atlantis" in result.stdout + result.stderr
    executed = nbformat.read(out / "failing.ipynb", as_version=4)
    assert executed.cells[1].outputs[-1].output_type == "error"
    assert not executed.cells[2].outputs
    assert "Failed" in summarize(executed)


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_prints_statuses_and_table_heads(tmp_path: Path) -> None:
    """What `make demo` runs: the quickstart against a fresh gateway, summarized."""
    result = subprocess.run(
        [sys.executable, "-m", "linkis_magic.cli", "demo", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=580,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "Embedded Linkis gateway on http://127.0.0.1:" in out
    assert "[4] %%linkis spark sql" in out
    assert out.count("Succeed") >= 4  # two views, two rows of %linkis jobs
    assert "progress bar 100%" in out
    assert re.search(r"west\s+50000", out)
    assert "(a PNG image: the plot)" in out
    assert "ERROR" not in out
    assert (tmp_path / "01-quickstart.ipynb").is_file()


def _port_open(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) == 0


@pytest.mark.timeout(120)
def test_lab_serves_the_linkis_kernels_on_loopback_and_stops_cleanly(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    token = secrets.token_hex(12)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    env.pop("LINKIS_GATEWAY", None)
    log_path = tmp_path / "lab.log"
    command = [
        sys.executable, "-m", "linkis_magic.demo", "lab",
        "--no-browser", "--ServerApp.port=0", f"--IdentityProvider.token={token}",
    ]  # fmt: skip
    with log_path.open("w") as log:
        lab = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        info_path = wait_for(
            lambda: next(runtime.glob("jpserver-*.json"), None) if lab.poll() is None else "exit",
            timeout=60,
            what="JupyterLab's runtime file",
        )
        assert info_path != "exit", log_path.read_text()
        info = wait_for(lambda: json.loads(info_path.read_text() or "null"), 10, "server info")
        gateway = re.search(r"Embedded Linkis gateway on (http://\S+);", log_path.read_text())

        specs = httpx.get(f"{info['url']}api/kernelspecs", params={"token": token}).json()

        assert info["hostname"] == "127.0.0.1"
        assert {"linkis_spark_sql", "linkis_pyspark", "linkis_python", "linkis_shell"} <= set(
            specs["kernelspecs"]
        )
        assert gateway is not None and _port_open(gateway[1])
    finally:
        lab.send_signal(signal.SIGTERM)
        code = lab.wait(timeout=60)
    assert code == 0, log_path.read_text()[-2000:]
    assert not _port_open(gateway[1])
