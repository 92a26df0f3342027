"""Per-cell overhead: ``%%linkis python`` on a trivial job, against a bare websockets script.

Both run the same one-line job on the same warm python engine, alternately, cell after cell:

- the magic, in an in-process IPython shell, with the widget view (its widgets talk to a
  recording comm) and the result displayed, as in a notebook;
- a bare script on one open ``websockets`` connection: send the execute frame, read frames until
  the job's terminal status, then read its result over REST (jobhistory, getDirFileTrees,
  openFile), with ``json.loads`` only.

For each cell, wall time minus the engine's own time (the job's Running phase, from its
jobhistory record) is what the path around the engine costs; the figure is the difference of the
two medians.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import uuid
from typing import Any

import httpx
from websockets.sync.client import connect

from bench.harness import BenchGateway, Figure, Size, median, ms, verdict
from bench.throughput import recording_comms
from linkis_magic import protocol as p

TARGET_EXTRA = 0.020
CODE = "1 + 1"
TERMINAL = {s.value for s in p.JobStatus if s.is_terminal}


class BareCells:
    """The baseline: one WebSocket and one HTTP client, a job per call."""

    def __init__(self, gw: BenchGateway) -> None:
        self._gw = gw
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> BareCells:
        gw = self._gw
        cookie = gw.login_cookie()
        name, _, value = cookie.partition("=")
        ws_url = "ws://" + gw.url.split("://", 1)[1] + p.WS_PATH
        with contextlib.ExitStack() as stack:
            self.ws = stack.enter_context(
                connect(ws_url, additional_headers={"Cookie": cookie}, compression=None)
            )
            self.http = stack.enter_context(
                httpx.Client(base_url=gw.url + p.REST_PREFIX, cookies={name: value})
            )
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def run(self, code: str) -> tuple[float, dict[str, Any]]:
        """Wall time of one job, submit to result read; and its jobhistory record."""
        started = time.perf_counter()
        tag = uuid.uuid4().hex
        self.ws.send(json.dumps(p.build_execute_frame(code, "python", "python", tag=tag)))
        exec_id = None
        while True:
            frame = json.loads(self.ws.recv(timeout=60))
            data = frame.get("data") or {}
            if exec_id is None and data.get("websocketTag") == tag and "execID" in data:
                exec_id, task_id = data["execID"], data["taskID"]
            elif (
                exec_id is not None
                and frame["method"] == p.job_method(exec_id, "status")
                and data.get("status") in TERMINAL
            ):
                break
        task = self.http.get(f"/jobhistory/{task_id}/get").json()["data"]["task"]
        tree = self.http.get("/filesystem/getDirFileTrees", params={"path": task["resultLocation"]})
        for child in tree.json()["data"]["dirFileTrees"]["children"]:
            params = {"path": child["path"], "page": 1, "pageSize": p.DEFAULT_PAGE_SIZE}
            self.http.get("/filesystem/openFile", params=params).json()
        return time.perf_counter() - started, task


def engine_seconds(task: dict[str, Any]) -> float:
    """The job's Running phase, from its jobhistory record (milliseconds)."""
    return (task["requestEndTime"] - task["engineStartTime"]) / 1000.0


@contextlib.contextmanager
def magic_shell(gw: BenchGateway) -> Any:
    """An in-process IPython shell with the extension loaded, pointed at the bench gateway."""
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    assert ip.extension_manager is not None
    publisher = ip.display_pub
    ip.display_pub = CapturingDisplayPublisher()
    ip.extension_manager.load_extension("linkis_magic")
    try:
        for key, value in (
            ("gateway", gw.url),
            ("user", gw.user),
            ("password", gw.password),
            ("view", "widget"),
        ):
            ip.run_line_magic("config", f"LinkisMagic.{key} = {value!r}")
        yield ip
    finally:
        ip.extension_manager.unload_extension("linkis_magic")
        ip.display_pub = publisher


def run(gw: BenchGateway, size: Size) -> Figure:
    magic_walls: list[float] = []
    magic_rest: list[float] = []
    bare_walls: list[float] = []
    bare_rest: list[float] = []
    engine: list[float] = []
    name, _, value = gw.login_cookie().partition("=")
    with (
        BareCells(gw) as bare,
        httpx.Client(base_url=gw.url + p.REST_PREFIX, cookies={name: value}) as history,
        magic_shell(gw) as ip,
        recording_comms(),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        from linkis_magic.magic import loaded_magics

        magics = loaded_magics(ip)
        assert magics is not None
        ip.run_cell_magic("linkis", "python", CODE)  # connect and start the engine
        bare.run(CODE)
        for _ in range(size.overhead_cells):
            started = time.perf_counter()
            value_shown = ip.run_cell_magic("linkis", "python", CODE)
            wall = time.perf_counter() - started
            assert value_shown is None  # a text result is displayed, not returned
            assert magics.client is not None
            job = magics.client.jobs[-1]
            reply = history.get(f"/jobhistory/{job.task_id}/get").json()
            seconds = engine_seconds(reply["data"]["task"])
            magic_walls.append(wall)
            magic_rest.append(wall - seconds)
            engine.append(seconds)
            ip.display_pub.outputs.clear()

            wall, task = bare.run(CODE)
            seconds = engine_seconds(task)
            bare_walls.append(wall)
            bare_rest.append(wall - seconds)
            engine.append(seconds)

    extra = median(magic_rest) - median(bare_rest)
    met = extra <= TARGET_EXTRA
    values = {
        "cells": size.overhead_cells,
        "code": CODE,
        "view": "widget (recording comm)",
        "magic_wall_median_s": median(magic_walls),
        "bare_wall_median_s": median(bare_walls),
        "engine_median_s": median(engine),
        "magic_minus_engine_median_s": median(magic_rest),
        "bare_minus_engine_median_s": median(bare_rest),
        "extra_s": extra,
        "magic_walls_s": magic_walls,
        "bare_walls_s": bare_walls,
    }
    line = (
        f"per-cell overhead: %%linkis python on '{CODE}' takes {ms(median(magic_walls))} "
        f"against {ms(median(bare_walls))} for a bare websockets script (engine "
        f"{ms(median(engine))}); {ms(extra)} more outside the engine, median of "
        f"{size.overhead_cells} cells ({verdict(met, '<= 20 ms')})"
    )
    return Figure("cell_overhead", line, values, {"extra_at_most_20ms": met})
