"""Result transfer: a large table result set fetched into a DataFrame, against the protocol's floor.

The gateway process writes the table with its own result-set writer (``bench.gateway_proc``) and
registers it to a finished job. The client attaches to that job and calls ``job.result()``:
jobhistory, getDirFileTrees, then openFile page by page (the client's default page size), each
page converted to typed columns.

The floor is what no client of this protocol can avoid: ``json.loads`` of the same openFile
pages (fetched beforehand, so no network or gateway time is in it) plus building the same
DataFrame from them. The two frames are checked equal, so both did the same work.

Time is the best of two runs each (the machine is shared); peak memory is measured in a third
run under tracemalloc, against the DataFrame's own ``memory_usage(deep=True)``.
"""

from __future__ import annotations

import gc
import json
import time
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import numpy as np
import pandas as pd

from bench.gateway_proc import TABLE_COLUMNS
from bench.harness import BenchGateway, Figure, Size, ms, verdict
from linkis_magic import protocol as p
from linkis_magic.client import DEFAULT_OPTIONS

TARGET_TIME = 1.5
TARGET_MEMORY = 3.0
REPEATS = 2


def fetch_pages(gw: BenchGateway, table: dict[str, Any], page_size: int) -> list[bytes]:
    """The raw bodies of every openFile page of the table's result set."""
    name, _, value = gw.login_cookie().partition("=")
    with httpx.Client(base_url=gw.url + p.REST_PREFIX, cookies={name: value}, timeout=600) as h:
        task = h.get(f"/jobhistory/{table['task_id']}/get").json()["data"]["task"]
        tree = h.get("/filesystem/getDirFileTrees", params={"path": task["resultLocation"]})
        path = tree.json()["data"]["dirFileTrees"]["children"][0]["path"]
        pages = []
        page = 1
        while True:
            params = {"path": path, "page": page, "pageSize": page_size}
            body = h.get("/filesystem/openFile", params=params).content
            pages.append(body)
            if len(json.loads(body)["data"]["fileContent"]) < page_size:
                return pages
            page += 1


def floor_frame(pages: list[bytes]) -> pd.DataFrame:
    """json.loads of every page, then the typed DataFrame built from all rows at once."""
    rows: list[list[str]] = []
    metadata: list[dict[str, str]] = []
    for body in pages:
        data = json.loads(body)["data"]
        metadata = metadata or data["metadata"]
        rows.extend(data["fileContent"])
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in metadata]
    out: dict[str, Any] = {}
    for spec, values in zip(metadata, columns, strict=True):
        raw = np.array(values, dtype=object)
        out[spec["columnName"]] = _typed(spec["dataType"], raw, raw == "NULL")
    return pd.DataFrame(out)


def _typed(data_type: str, raw: np.ndarray, nulls: np.ndarray) -> Any:
    if data_type == "bigint":
        return pd.arrays.IntegerArray(np.where(nulls, "0", raw).astype(np.int64), nulls)
    if data_type == "double":
        return np.where(nulls, "nan", raw).astype(np.float64)
    if data_type == "boolean":
        return pd.arrays.BooleanArray(raw == "true", nulls)
    if data_type == "date":
        dates = pd.Series(np.where(nulls, None, raw), dtype=object)  # type: ignore[call-overload,arg-type]
        return pd.to_datetime(dates, format="%Y-%m-%d").to_numpy()
    if data_type.startswith("decimal"):
        return np.array([None if n else Decimal(v) for v, n in zip(raw, nulls, strict=True)])
    return np.where(nulls, None, raw)  # type: ignore[call-overload]


def client_frame(gw: BenchGateway, table: dict[str, Any]) -> Callable[[], pd.DataFrame]:
    """A function that fetches the table with a fresh client (attached and finalized first)."""
    client = gw.client()
    job = client.attach(table["exec_id"], table["task_id"])
    job.wait(timeout=120)

    def fetch() -> pd.DataFrame:
        try:
            frame = job.result()
        finally:
            client.close()
        if frame is None:
            raise RuntimeError("the job has no table result")
        return frame

    return fetch


def timed(fn: Callable[[], pd.DataFrame]) -> tuple[float, pd.DataFrame]:
    gc.collect()
    started = time.perf_counter()
    frame = fn()
    return time.perf_counter() - started, frame


def traced(fn: Callable[[], pd.DataFrame]) -> tuple[int, pd.DataFrame]:
    """Peak bytes allocated while ``fn`` runs (the frame it returns included)."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        frame = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return peak, frame


def run(gw: BenchGateway, size: Size) -> Figure:
    rows = size.transfer_rows
    written = time.monotonic()
    table = gw.command(cmd="table", rows=rows, timeout=1800)
    written = time.monotonic() - written
    page_size = int(DEFAULT_OPTIONS["page_size"])

    started = time.perf_counter()
    pages = fetch_pages(gw, table, page_size)
    raw_fetch = time.perf_counter() - started

    client_times, floor_times = [], []
    for _ in range(REPEATS):
        client_times.append(timed(client_frame(gw, table))[0])
        floor_times.append(timed(lambda: floor_frame(pages))[0])
    client_peak, frame = traced(client_frame(gw, table))
    floor_peak, floor = traced(lambda: floor_frame(pages))
    if frame.shape != (rows, len(TABLE_COLUMNS)):
        raise RuntimeError(f"the client read a {frame.shape} frame, not {rows} rows")
    pd.testing.assert_frame_equal(frame, floor)
    frame_bytes = int(frame.memory_usage(deep=True).sum())

    client_time, floor_time = min(client_times), min(floor_times)
    time_ratio = client_time / floor_time
    memory_ratio = client_peak / frame_bytes
    targets = {
        "time_at_most_1.5x": time_ratio <= TARGET_TIME,
        "memory_at_most_3x": memory_ratio <= TARGET_MEMORY,
    }
    values = {
        "rows": rows,
        "columns": [f"{name}:{dtype}" for name, dtype in frame.dtypes.astype(str).items()],
        "page_size": page_size,
        "pages": len(pages),
        "page_bytes": sum(len(b) for b in pages),
        "table_write_s": written,
        "raw_page_fetch_s": raw_fetch,
        "client_s": client_times,
        "floor_s": floor_times,
        "time_ratio": time_ratio,
        "client_peak_bytes": client_peak,
        "floor_peak_bytes": floor_peak,
        "frame_bytes": frame_bytes,
        "memory_ratio": memory_ratio,
    }
    line = (
        f"result transfer: {rows:,} rows x {frame.shape[1]} columns into a DataFrame in "
        f"{ms(client_time)}, x{time_ratio:.2f} of json.loads + building it ({ms(floor_time)}; "
        f"{verdict(targets['time_at_most_1.5x'], '<= 1.5x')}); peak memory "
        f"{client_peak / 1e6:,.0f} MB, x{memory_ratio:.2f} of the frame's "
        f"{frame_bytes / 1e6:,.0f} MB ({verdict(targets['memory_at_most_3x'], '<= 3x')}); "
        f"the raw pages alone took {ms(raw_fetch)} to fetch"
    )
    return Figure("result_transfer", line, values, targets)
