"""What a user does in JupyterLab, as Playwright steps: open a notebook, find a cell, run it.

Every step waits on a condition of the page (Playwright's auto-waiting locators), never a sleep.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# Starting a kernel and a Spark session on two shared cores can take a while.
KERNEL_TIMEOUT_MS = 120_000
_RAN_PROMPT = re.compile(r"^\[\d+\]:$")


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: its base URL, token and the directory it serves."""

    url: str
    token: str
    root_dir: Path

    def tree_url(self, notebook: str) -> str:
        """The URL that opens ``notebook`` (relative to the root dir) and logs in with the token."""
        return f"{self.url}lab/tree/{notebook}?token={self.token}"


def open_notebook(page: Page, url: str, kernel_display_name: str) -> None:
    """Open the notebook at ``url`` and wait until its kernel is idle."""
    page.goto(url)
    expect(page.locator(".jp-NotebookPanel .jp-Notebook").first).to_be_visible(
        timeout=KERNEL_TIMEOUT_MS
    )
    status = page.locator(".jp-StatusBar-Widget").get_by_text(f"{kernel_display_name} | Idle")
    expect(status).to_be_visible(timeout=KERNEL_TIMEOUT_MS)


def code_cell(page: Page, text: str) -> Locator:
    """The first code cell whose source contains ``text``."""
    cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell")
    cell = cells.filter(has=page.locator(".jp-InputArea-editor", has_text=text)).first
    expect(cell).to_be_visible()
    return cell


def run_cell(page: Page, cell: Locator) -> None:
    """Run ``cell`` in place (Ctrl+Enter) as a user would; returns once it was sent."""
    cell.locator(".jp-InputArea-editor .cm-content").click()
    page.keyboard.press("Control+Enter")
    expect(cell.locator(".jp-InputArea-prompt")).not_to_have_text("[ ]:")


def wait_until_ran(cell: Locator, timeout_ms: int = KERNEL_TIMEOUT_MS) -> None:
    """Wait until the kernel has finished ``cell`` (its prompt shows an execution count)."""
    expect(cell.locator(".jp-InputArea-prompt")).to_have_text(_RAN_PROMPT, timeout=timeout_ms)


def job_view(cell: Locator) -> Locator:
    """The live view a %%linkis cell displays: the widget box that holds a progress bar."""
    return (
        cell.locator(".jp-OutputArea-output .widget-vbox")
        .filter(has=cell.page.locator(".widget-hprogress"))
        .first
    )
