"""The product in a real JupyterLab in Chromium: a %%linkis cell's live view, and the kernel."""

from __future__ import annotations

import re

import pytest
from jupyterlab_page import (
    ARTIFACTS,
    Lab,
    code_cell,
    job_view,
    open_notebook,
    run_cell,
    wait_until_ran,
)
from playwright.sync_api import BrowserContext, expect

pytestmark = [pytest.mark.browser, pytest.mark.spark, pytest.mark.slow]

JOB_TIMEOUT_MS = 240_000


@pytest.mark.timeout(600)
def test_quickstart_cell_shows_progress_status_logs_and_table(
    lab: Lab, browser: BrowserContext
) -> None:
    page = browser.new_page()
    open_notebook(page, lab.tree_url("01-quickstart.ipynb"), "Python 3 (ipykernel)")

    load = code_cell(page, "%load_ext linkis_magic")
    run_cell(page, load)
    wait_until_ran(load)
    cell = code_cell(page, "%%linkis spark sql")
    run_cell(page, cell)

    view = job_view(cell)
    bar = view.locator(".widget-hprogress .progress-bar")
    expect(bar).to_be_visible(timeout=JOB_TIMEOUT_MS)
    live_status = view.get_by_text(re.compile(r"^(Inited|Scheduled|Running)$"))
    expect(live_status).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(view.get_by_text("Succeed", exact=True)).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(bar).to_have_attribute("style", re.compile(r"width: 100%"))
    expect(view.locator(".widget-label", has_text=re.compile(r"^100%$"))).to_be_visible()
    expect(view).to_contain_text("execID")

    log_header = view.get_by_text(re.compile(r"^log \(\d+ lines\)$"))
    log_header.click()
    log = view.locator("pre")
    expect(log).to_be_visible()
    expect(log).to_contain_text("SCRIPT CODE")
    expect(log).to_contain_text(re.compile(r"\bINFO\b"))

    wait_until_ran(cell, JOB_TIMEOUT_MS)
    table = cell.locator(".jp-OutputArea-output table.dataframe").first
    expect(table).to_be_visible()
    expect(table.locator("thead")).to_contain_text("revenue")
    expect(table.locator("tbody tr")).to_have_count(4)
    for region in ("north", "south", "east", "west"):
        expect(table).to_contain_text(region)

    cell.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "quickstart-live-view.png"), full_page=True)
    cell.screenshot(path=str(ARTIFACTS / "quickstart-cell.png"))
    page.close()


@pytest.mark.timeout(600)
def test_linkis_spark_sql_kernel_runs_a_cell(lab: Lab, browser: BrowserContext) -> None:
    page = browser.new_page()
    open_notebook(page, lab.tree_url("05-linkis-kernel.ipynb"), "Linkis Spark SQL")

    cell = code_cell(page, "hello from Linkis")
    run_cell(page, cell)

    view = job_view(cell)
    expect(view.get_by_text("Succeed", exact=True)).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(view).to_contain_text("spark / sql")
    wait_until_ran(cell, JOB_TIMEOUT_MS)
    table = cell.locator(".jp-OutputArea-output table.dataframe").first
    expect(table).to_contain_text("hello from Linkis")

    page.screenshot(path=str(ARTIFACTS / "linkis-kernel.png"), full_page=True)
    page.close()
