"""Rendering and coalescing of the views, driven by a job-like object (no gateway here).

The same views are driven by real jobs on the embedded gateway in test_magic_gateway.py.
"""

from __future__ import annotations

import base64
import io
import struct
import threading
import time
import zlib

import pandas as pd
import pytest
from magic_helpers import FakeJob, Logs, RecordingComm, comm_of
from waiting import wait_for as wait_until

from linkis_magic.protocol import JobStatus, ProgressInfo
from linkis_magic.results import ResultSet
from linkis_magic.views import JobView, TextView, Throttle, format_elapsed, leveled_lines


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG = _png(2, 2)
ERR = "2026-12-01 10:00:02.000 ERROR boom <b>bold</b>"
INFO = "2026-12-01 10:00:01.000 INFO starting"
TRACE = "  at line 3"


def test_throttle_merges_a_burst_and_renders_the_last_state() -> None:
    seen: list[int] = []
    counter = [0]

    def render() -> bool:
        seen.append(counter[0])
        return True

    throttle = Throttle(render, interval=0.1)
    throttle.start()
    started = time.monotonic()
    for i in range(1, 3001):
        counter[0] = i
        throttle.poke()
        if i % 100 == 0:
            time.sleep(0.01)  # spread the burst over about 0.3 s
    duration = time.monotonic() - started
    wait_until(lambda: seen and seen[-1] == 3000)
    throttle.stop()
    assert len(seen) <= duration / 0.1 + 3
    assert throttle.renders == len(seen)


def test_throttle_ticks_without_pokes_and_stops_when_render_says_so() -> None:
    calls: list[float] = []

    def render() -> bool:
        calls.append(time.monotonic())
        return len(calls) < 3

    throttle = Throttle(render, interval=0.01, tick=0.05)
    throttle.start()
    wait_until(lambda: not throttle.running)
    assert len(calls) == 3


def test_format_elapsed() -> None:
    assert [format_elapsed(s) for s in (None, 3.24, 125, 3720)] == [
        "",
        "3.2 s",
        "2 min 05 s",
        "1 h 02 min",
    ]


def test_continuation_lines_keep_their_level() -> None:
    assert leveled_lines(f"{INFO}\n{ERR}\n{TRACE}") == [
        ("INFO", INFO),
        ("ERROR", ERR),
        ("ERROR", TRACE),
    ]


def test_job_view_shows_the_job_state(recording_comms: list[RecordingComm]) -> None:
    job = FakeJob(status=JobStatus.RUNNING, progress=0.45, elapsed=3.2, waiting_size=None)
    job.progress_info = (ProgressInfo("stage-1", 3, 1, 2, 10),)
    job.logs = Logs(all=f"{INFO}\n{ERR}\n{TRACE}", error=ERR, info=INFO)
    view = JobView(job, log_lines=2)

    assert "python / python" in view.header.value
    assert "exec-1" in view.header.value and "<code>7</code>" in view.header.value
    assert "Running" in view.status.value and "#0d6efd" in view.status.value
    assert "3.2 s" in view.status.value
    assert view.bar.value == pytest.approx(0.45)
    assert view.percent.value == "45%"
    assert "<td>stage-1</td><td>3</td><td>2</td><td>1</td><td>10</td>" in view.stages.value
    assert "1 earlier lines" in view.log.value
    assert "&lt;b&gt;bold&lt;/b&gt;" in view.log.value
    assert '<span style="color:#dc3545">  at line 3</span>' in view.log.value
    assert view.log_box.titles == ("log (3 lines)",)
    assert view.cancel.layout.display == "none"  # foreground: interrupt the kernel instead

    view.level.value = "INFO"
    assert "starting" in view.log.value and "boom" not in view.log.value
    assert comm_of(view.bar).updates("value") == [] or comm_of(view.bar).opened


def test_job_view_waiting_failed_and_cancelled_states(recording_comms: list[RecordingComm]) -> None:
    job = FakeJob(status=JobStatus.SCHEDULED, waiting_size=2)
    view = JobView(job)
    assert "queue position 3" in view.status.value

    job.status = JobStatus.FAILED
    job.logs = Logs(all=ERR, error=ERR)
    view.render()
    assert "Failed" in view.status.value and "queue" not in view.status.value
    assert view.bar.bar_style == "danger"
    assert view.log_box.selected_index == 0  # the error lines are opened up

    job.status = JobStatus.CANCELLED
    view.render()
    assert view.bar.bar_style == "warning"


def test_job_view_updates_are_coalesced_and_end_on_the_final_state(
    recording_comms: list[RecordingComm],
) -> None:
    job = FakeJob(status=JobStatus.RUNNING)
    view = JobView(job, interval=0.2, background=True)
    view.show()
    bar = comm_of(view.bar)

    def pushes() -> None:
        for i in range(1, 1001):
            job.update(progress=i / 1000, elapsed=i / 1000)
            if i % 100 == 0:
                time.sleep(0.05)

    started = time.monotonic()
    pusher = threading.Thread(target=pushes)
    pusher.start()
    pusher.join()
    duration = time.monotonic() - started
    job.update(status=JobStatus.SUCCEED)
    wait_until(lambda: not view._throttle.running)

    values = bar.updates("value")
    assert values[-1] == 1.0
    # 1000 events; at most one render per 0.2 s, plus the first and the trailing one.
    assert len(values) <= duration / 0.2 + 3
    assert comm_of(view.bar).updates("bar_style")[-1] == "success"
    assert "Succeed" in comm_of(view.status).updates("value")[-1]


def test_background_view_shows_results_and_cancel_kills(
    recording_comms: list[RecordingComm],
) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3]})
    job = FakeJob(status=JobStatus.RUNNING)
    job.result_sets = [
        ResultSet(0, "table", frame, truncated=True),
        ResultSet(1, "text", "plain words"),
        ResultSet(2, "html", "<i>hi</i>"),
        ResultSet(3, "picture", PNG),
    ]
    view = JobView(job, background=True, interval=0.05)
    view.show()
    assert view.cancel.layout.display != "none"

    comm_of(view.cancel).click()
    assert job.killed.is_set()
    assert view.cancel.disabled

    job.update(status=JobStatus.SUCCEED, progress=1.0)
    wait_until(lambda: not view._throttle.running)  # the results are shown, their messages sent
    caption, table, text, page, picture = view.results.outputs
    assert (
        "table 1: 3 rows × 1 columns (first 3 rows; the result has more"
        in caption["data"]["text/plain"]
    )
    assert "<table" in table["data"]["text/html"]
    assert text["data"]["text/plain"] == "plain words"
    assert page["data"]["text/html"] == "<i>hi</i>"
    assert base64.b64decode(picture["data"]["image/png"]) == PNG
    assert list(comm_of(view.results).updates("outputs")[-1]) == list(view.results.outputs)


def test_text_view_tells_the_story_once() -> None:
    stream = io.StringIO()
    job = FakeJob(status=JobStatus.INITED)
    view = TextView(job, stream=stream, interval=0.05)
    view.show()
    job.update(
        status=JobStatus.RUNNING, progress=0.5, progress_info=(ProgressInfo("s1", 1, 0, 1, 2),)
    )
    job.update(logs=Logs(all=f"{INFO}\n{ERR}"))
    wait_until(lambda: "boom" in stream.getvalue())
    job.update(status=JobStatus.SUCCEED, progress=1.0, elapsed=1.5)
    view.close()

    text = stream.getvalue()
    assert "[linkis python/python execID exec-1, taskID 7] Inited" in text
    assert text.count("] Running") == 1
    assert "progress 50%" in text and "s1: 1 succeeded, 1 running, 0 failed of 2" in text
    assert text.count("starting") == 1
    assert "\x1b[31m" + ERR in text
    assert text.rstrip().endswith("Succeed (1.5 s)") or "progress 100%" in text
    assert "] Succeed (1.5 s)" in text
