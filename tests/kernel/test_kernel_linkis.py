"""The Linkis kernel end to end: cells on Linkis, %%local, failures, interrupts, shutdown.

Kernels run as real processes (jupyter_client) against the session's embedded gateway; the
gateway's REST API is the witness of what happened to the remote jobs.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kernel_helpers import (
    EMBEDDED_URL,
    EXEC_ID,
    LinkisKernelSession,
    RunningCell,
    alive,
    engine_processes,
    job_status,
    kernel_env,
    kill_job,
)
from waiting import wait_for as wait_until

pytestmark = [pytest.mark.slow]


@pytest.fixture
def python_kernel(gateway: Any, tmp_path: Path) -> Iterator[LinkisKernelSession]:
    session = LinkisKernelSession("linkis_python", tmp_path, kernel_env(tmp_path, gateway))
    yield session
    session.shutdown()


def background_exec_id(session: LinkisKernelSession, code: str) -> str:
    """Run a ``--background`` cell; return its job's execID once the server has given it."""
    cell = session.execute(code)
    assert cell.status == "ok", cell.reply
    assert session.execute("%%local\nbackground_job = _").status == "ok"

    def exec_id() -> str:
        return session.execute("%%local\nprint(background_job.exec_id or '')").text().strip()

    return str(wait_until(exec_id, timeout=30))


def running_exec_id(cell: RunningCell) -> str | None:
    """The execID once the cell's text view has said the job is Running."""
    text = cell.text()
    match = EXEC_ID.search(text)
    return match.group(1) if match and "Running" in text else None


@pytest.mark.timeout(120)
def test_python_cells_run_on_linkis_and_keep_their_names_between_cells(
    python_kernel: LinkisKernelSession,
) -> None:
    first = python_kernel.execute("remote_name = 'from the engine'\nprint(remote_name)")
    second = python_kernel.execute("print(remote_name.upper())")
    local = python_kernel.execute("%%local\n'remote_name' in globals()")

    assert first.status == "ok", first.reply
    assert "from the engine" in "".join(first.data("display_data"))
    assert "FROM THE ENGINE" in "".join(second.data("display_data"))
    assert EXEC_ID.search(second.text())
    assert local.data("execute_result") == ["False"]


@pytest.mark.timeout(120)
def test_o_dataframe_of_a_linkis_line_on_the_kernels_engine_lives_in_the_kernel(
    python_kernel: LinkisKernelSession,
) -> None:
    made = python_kernel.execute(
        "%%linkis -o df\nimport pandas as pd\npd.DataFrame({'a': [1, 2, 3]})"
    )
    used = python_kernel.execute("%%local\nint(df['a'].sum())")

    assert made.status == "ok", made.reply
    assert used.data("execute_result") == ["6"]


@pytest.mark.timeout(120)
def test_local_tracebacks_count_lines_as_the_cell_shows_them(
    python_kernel: LinkisKernelSession,
) -> None:
    cell = python_kernel.execute("%%local\nx = 1\nraise RuntimeError('on line three')")

    assert cell.reply["ename"] == "RuntimeError"
    assert "line 3" in "".join(cell.reply["traceback"])


@pytest.mark.timeout(120)
def test_a_failed_remote_job_is_a_cell_error_with_the_engines_message(
    python_kernel: LinkisKernelSession,
) -> None:
    cell = python_kernel.execute("raise ValueError('bad input 42')")

    assert cell.status == "error"
    assert cell.reply["ename"] == "JobError"
    assert "bad input 42" in cell.reply["evalue"] + "".join(cell.reply["traceback"])


@pytest.mark.timeout(120)
def test_linkis_subcommands_and_usage_errors_run_as_written(
    python_kernel: LinkisKernelSession,
) -> None:
    python_kernel.execute("print('connect first')")
    status = python_kernel.execute("%linkis status")
    misuse = python_kernel.execute("%%local --now\nprint(1)")

    assert status.status == "ok"
    assert "connected" in status.text()
    assert misuse.status == "error"
    assert "%%local takes no arguments" in misuse.text("stderr")


@pytest.mark.timeout(120)
def test_interrupt_kills_the_remote_job_and_the_cell_raises_keyboard_interrupt(
    gateway: Any, python_kernel: LinkisKernelSession
) -> None:
    cell = python_kernel.start("import time\ntime.sleep(60)")
    cell.read_until(lambda c: running_exec_id(c) is not None, timeout=60)
    exec_id = running_exec_id(cell)
    assert exec_id is not None

    python_kernel.km.interrupt_kernel()

    assert wait_until(lambda: job_status(gateway, exec_id) == "Cancelled", timeout=5)
    done = cell.finish(timeout=30)
    assert done.status == "error"
    assert done.reply["ename"] == "KeyboardInterrupt"
    assert "Cancelled" in done.text()
    after = python_kernel.execute("print('still usable')")
    assert after.status == "ok", after.reply


@pytest.mark.timeout(120)
def test_shutdown_kills_the_kernels_background_jobs(gateway: Any, tmp_path: Path) -> None:
    session = LinkisKernelSession("linkis_python", tmp_path, kernel_env(tmp_path, gateway))
    try:
        exec_id = background_exec_id(
            session, "%%linkis python python --background\nimport time\ntime.sleep(60)"
        )
        wait_until(lambda: job_status(gateway, exec_id) == "Running", timeout=30)
    finally:
        session.shutdown()

    assert wait_until(lambda: job_status(gateway, exec_id) == "Cancelled", timeout=5)


@pytest.mark.timeout(120)
def test_kernel_settings_take_config_magic(python_kernel: LinkisKernelSession) -> None:
    before = python_kernel.execute("%%local\nget_ipython().kernel.kill_on_shutdown")
    python_kernel.execute("%config LinkisKernel.kill_on_shutdown = False")
    after = python_kernel.execute("%%local\nget_ipython().kernel.kill_on_shutdown")

    assert before.data("execute_result") == ["True"]
    assert after.data("execute_result") == ["False"]


@pytest.mark.timeout(120)
def test_kill_on_shutdown_off_keeps_the_jobs_running(gateway: Any, tmp_path: Path) -> None:
    env = kernel_env(tmp_path, gateway, extra={"LINKIS_KERNEL_KILL_ON_SHUTDOWN": "0"})
    session = LinkisKernelSession("linkis_python", tmp_path, env)
    try:
        exec_id = background_exec_id(
            session, "%%linkis python python --background\nimport time\ntime.sleep(60)"
        )
        wait_until(lambda: job_status(gateway, exec_id) == "Running", timeout=30)
    finally:
        session.shutdown()

    try:
        assert job_status(gateway, exec_id) == "Running"
    finally:
        kill_job(gateway, exec_id)


@pytest.mark.timeout(120)
def test_without_settings_the_kernel_starts_an_embedded_gateway_and_stops_it(
    tmp_path: Path,
) -> None:
    env = kernel_env(tmp_path, None, extra={"HOME": str(tmp_path / "home")})
    session = LinkisKernelSession("linkis_shell", tmp_path, env)
    try:
        cell = session.execute("echo from bash")
        assert cell.status == "ok", cell.reply
        assert "from bash" in "".join(cell.data("display_data"))
        url = EMBEDDED_URL.search(cell.text()).group(1)  # type: ignore[union-attr]
        port = int(url.rsplit(":", 1)[1])
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        engines = engine_processes(session.km.provisioner.pid)  # type: ignore[union-attr]
        assert engines, "the embedded gateway runs its shell engine as a child of the kernel"
    finally:
        session.shutdown()

    assert wait_until(lambda: not any(alive(pid) for pid in engines), timeout=10)

    def refused() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return True
        return False

    assert wait_until(refused, timeout=10)


@pytest.mark.timeout(180)
def test_nbclient_stops_a_notebook_at_the_first_failed_linkis_cell(
    gateway: Any, tmp_path: Path
) -> None:
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from linkis_magic import kernelspecs

    prefix = tmp_path / "jupyter-prefix"
    kernelspecs.install(["linkis_python"], prefix=str(prefix))
    manager = KernelSpecManager(kernel_dirs=[str(prefix / "share" / "jupyter" / "kernels")])
    km = KernelManager(kernel_name="linkis_python", kernel_spec_manager=manager)
    cells = ["answer = 21", "print(answer * 2)", "raise ValueError('stop here')", "print('never')"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in cells])
    client = NotebookClient(nb, km=km, timeout=120, kernel_name="linkis_python")

    with pytest.raises(CellExecutionError, match="stop here"):
        # The client was handed its kernel manager, so it stops the kernel only when told to.
        client.execute(env=kernel_env(tmp_path, gateway), cleanup_kc=True)

    printed = [o.get("data", {}).get("text/plain", "") for o in nb.cells[1].outputs]
    assert any("42" in text for text in printed)
    assert nb.cells[3].outputs == []
    assert nb.cells[3].get("execution_count") is None
