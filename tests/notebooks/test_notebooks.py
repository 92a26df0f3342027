"""Every notebook in notebooks/ runs headless with nbclient against an embedded gateway, cleanly."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from linkis_magic.demo import (
    WIDGET_STATE,
    WIDGET_VIEW,
    Gateway,
    embedded_gateway,
    execute_notebook,
    kernel_env,
    widget_lines,
)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REQUIRED = {
    "01-quickstart",
    "02-variables-and-configuration",
    "03-background-and-cancel",
    "04-python-and-shell",
    "05-linkis-kernel",
}
KERNEL_MAGICS = ("%%local", "%%python", "%linkis")

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def notebook_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with embedded_gateway(tmp_path_factory.mktemp("gateway")) as gw:
        yield gw


def _outputs(notebook: Any, kind: str) -> list[Any]:
    return [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == kind
    ]


def _view_texts(cell: Any, notebook: Any) -> list[str]:
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    lines: list[str] = []
    for output in cell.get("outputs", []):
        view = output.get("data", {}).get(WIDGET_VIEW)
        if view:
            lines.extend(widget_lines(view["model_id"], state))
    return lines


def _is_linkis_cell(cell: Any, notebook: Any) -> bool:
    source = cell.source.lstrip()
    if source.startswith("%%linkis"):
        return True
    kernel = notebook.metadata.get("kernelspec", {}).get("name", "")
    return kernel.startswith("linkis_") and not source.startswith(KERNEL_MAGICS)


def test_every_demo_notebook_is_there() -> None:
    assert {path.stem for path in NOTEBOOKS} >= REQUIRED


def test_notebooks_are_committed_without_outputs() -> None:
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        ran = [
            c for c in notebook.cells if c.cell_type == "code" and (c.outputs or c.execution_count)
        ]
        assert not ran, f"{path.name} holds outputs: clear them before committing"
        first = notebook.cells[0]
        assert first.cell_type == "markdown"
        assert "LINKIS_GATEWAY" in first.source, f"{path.name} must say how to use a real gateway"


@pytest.mark.spark
@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_without_error(path: Path, notebook_gateway: Gateway, tmp_path: Path) -> None:
    copy = Path(shutil.copy(path, tmp_path / path.name))

    executed = execute_notebook(copy, kernel_env(notebook_gateway), timeout=300)

    assert not _outputs(executed, "error")
    for stream in _outputs(executed, "stream"):
        assert "Traceback" not in stream["text"], stream["text"]
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), "a cell did not run"
    for cell in code:
        if not _is_linkis_cell(cell, executed):
            continue
        texts = " ".join(_view_texts(cell, executed))
        assert "progress bar" in texts
        if "--background" in cell.source:
            # nbclient records a widget update only while the cell that sent it runs, so the
            # saved view of a background job may stop short of its end: the notebook prints the
            # job's final status itself.
            printed = " ".join(str(s["text"]) for s in _outputs(executed, "stream"))
            assert "ended: Cancelled" in printed, printed
            continue
        assert "Succeed" in texts, f"{cell.source.splitlines()[0]!r} shows {texts!r}"
