"""Push latency: how long after the gateway emits an event the Job sees it, against REST polling.

One python job prints numbered lines at a steady pace, each with the engine's clock
(``time.monotonic()``, which is CLOCK_MONOTONIC and so shared by every process on the machine).
Three watchers follow that one job at the same time:

- the client's Job, through pushes: for each event, the gateway's emit stamp
  (``protocol.EMIT_STAMP_KEY``) and the moment its subscriber callback runs;
- two bare REST pollers (httpx) reading ``/status`` and ``/log?fromLine=`` every 1 s (as
  linkis-python-sdk polls) and every 5 s (as Linkis's web console polls).

For every line, each watcher's latency is when it saw the line minus when the engine printed it.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.harness import (
    BareReader,
    BenchGateway,
    Figure,
    Size,
    go_snippet,
    median,
    ms,
    percentile,
    verdict,
    wait_for,
)
from linkis_magic import protocol as p
from linkis_magic.gateway.jobs import GatewayOptions

TARGET_MEDIAN = 0.002
LOG_PAGE = 10_000  # lines a /log?size=-1 read returns at most

JOB_CODE = """\
import os, time
i = 0
while i < {lines} and not os.path.exists({stop!r}):
    print("L", i, repr(time.monotonic()))
    i += 1
    time.sleep({gap})
"""

_LINE = re.compile(r" L (\d+) ([0-9.e+-]+)$")


def printed_lines(text: str) -> list[tuple[int, float]]:
    """``(number, engine print time)`` of every benchmark line in a chunk of log text."""
    out = []
    for line in text.splitlines():
        match = _LINE.search(line)
        if match:
            out.append((int(match[1]), float(match[2])))
    return out


@dataclass
class PushWatcher:
    """The Job's subscriber: emit->seen per event, print->seen per line."""

    emit_to_seen: list[float] = field(default_factory=list)
    print_to_seen: dict[int, float] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)

    def __call__(self, job: Any, event: Any) -> None:
        now = time.monotonic()
        emitted = getattr(event, "emitted", None)
        if emitted is None:
            return
        self.emit_to_seen.append(now - emitted)
        kind = type(event).__name__
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if isinstance(event, p.LogLines):
            for number, printed in printed_lines(event.all):
                self.print_to_seen.setdefault(number, now - printed)


class Poller(threading.Thread):
    """A bare REST-polling client: status and new log lines every ``cadence`` seconds."""

    def __init__(self, gw: BenchGateway, cookie: str, exec_id: str, cadence: float) -> None:
        super().__init__(name=f"poller-{cadence:g}s", daemon=True)
        name, _, value = cookie.partition("=")
        self.http = httpx.Client(base_url=gw.url + p.REST_PREFIX, cookies={name: value}, timeout=60)
        self.exec_id = exec_id
        self.cadence = cadence
        self.print_to_seen: dict[int, float] = {}
        self.polls = 0
        self.succeed_seen: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the benchmark
            self.error = exc
        finally:
            self.http.close()

    def _run(self) -> None:
        from_line = 1
        tick = time.monotonic()
        while True:
            status = self._get("status")["status"]
            while True:  # size=-1 reads at most 10000 lines: read on while pages come back full
                data = self._get("log", fromLine=from_line, size=-1)
                now = time.monotonic()
                text = p.split_log_buckets(data.get("log"))[3]
                for number, printed in printed_lines(text):
                    self.print_to_seen.setdefault(number, now - printed)
                after = int(data.get("fromLine") or from_line)
                full = after - from_line >= LOG_PAGE
                from_line = after
                if not full:
                    break
            self.polls += 1
            if p.JobStatus.parse(status).is_terminal:
                self.succeed_seen = time.monotonic()
                return
            tick += self.cadence
            time.sleep(max(0.0, tick - time.monotonic()))  # the baseline's own cadence

    def _get(self, op: str, **params: Any) -> dict[str, Any]:
        reply = self.http.get(f"/entrance/{self.exec_id}/{op}", params=params)
        reply.raise_for_status()
        data: dict[str, Any] = reply.json()["data"]
        return data


@dataclass
class Run:
    """One followed job: the Job's watcher, the pollers, the bare reader's summary."""

    push: PushWatcher
    pollers: list[Poller]
    bare: dict[str, Any] | None


def follow(
    gw: BenchGateway,
    client: Any,
    lines: int,
    gap: float,
    cadences: tuple[float, ...] = (),
    bare: bool = False,
    events: int = 0,
) -> Run:
    """Run the printing job with every watcher ready before its first line.

    The job prints ``lines`` lines, or with ``events`` set, prints until the Job has seen that
    many push events (``50 * events`` lines at most).
    """
    go = gw.data_dir / f"go-{time.monotonic_ns()}"
    watcher = PushWatcher()
    stop = gw.data_dir / f"stop-{time.monotonic_ns()}"
    limit = events * 50 if events else lines
    code = go_snippet(go) + JOB_CODE.format(lines=limit, gap=gap, stop=str(stop))
    job = client.submit(code, engine="python")
    job.subscribe(watcher)
    wait_for(lambda: job.exec_id is not None or job.done, 30, "the execID")
    reader = BareReader(gw, job.exec_id) if bare else None
    cookie = gw.login_cookie() if cadences else ""
    pollers = [Poller(gw, cookie, job.exec_id, c) for c in cadences]
    for poller in pollers:
        poller.start()
    go.touch()
    if events:
        wait_for(
            lambda: len(watcher.emit_to_seen) >= events or job.done,
            limit * gap * 20 + 60,
            f"{events} push events",
        )
        stop.touch()
    job.wait(timeout=limit * gap * 20 + 60)
    for poller in pollers:
        poller.join(timeout=max(cadences) * 3 + 60)
        if poller.error is not None:
            raise RuntimeError(f"the {poller.cadence:g} s poller failed: {poller.error!r}")
    return Run(watcher, pollers, reader.result() if reader else None)


def run(gw: BenchGateway, size: Size) -> Figure:
    client = gw.client()
    try:
        client.submit("0", engine="python").wait(timeout=120)  # the engine process is warm
        gw.set_options(log_push_interval=0.0)
        try:
            main = follow(
                gw,
                client,
                size.latency_events,
                size.latency_gap,
                size.poll_cadences,
                bare=True,
                events=size.latency_events,
            )
        finally:
            gw.set_options(log_push_interval=GatewayOptions().log_push_interval)
        coalesced = follow(gw, client, size.default_coalescing_lines, size.latency_gap)
    finally:
        client.close()
    return _figure(size, main, coalesced.push)


def _figure(size: Size, main: Run, coalesced: PushWatcher) -> Figure:
    watcher, pollers = main.push, main.pollers
    assert main.bare is not None
    bare = main.bare["emit_to_recv"]
    emit = watcher.emit_to_seen
    push_print = list(watcher.print_to_seen.values())
    default_print = list(coalesced.print_to_seen.values())
    values: dict[str, Any] = {
        "events": len(emit),
        "event_kinds": watcher.kinds,
        "lines_seen_by_job": len(watcher.print_to_seen),
        "line_gap_s": size.latency_gap,
        "emit_to_job_median_s": median(emit),
        "emit_to_job_p99_s": percentile(emit, 0.99),
        "emit_to_job_max_s": max(emit, default=float("nan")),
        "bare_websockets_emit_to_recv_median_s": median(bare),
        "bare_websockets_emit_to_recv_p99_s": percentile(bare, 0.99),
        "bare_websockets_frames": main.bare["frames"],
        "print_to_job_median_s": median(push_print),
        "print_to_job_p99_s": percentile(push_print, 0.99),
        "default_coalescing": {
            "log_push_interval_s": GatewayOptions().log_push_interval,
            "lines": size.default_coalescing_lines,
            "print_to_job_median_s": median(default_print),
            "print_to_job_p99_s": percentile(default_print, 0.99),
        },
        "polling": [],
    }
    push_median = median(push_print)
    parts = []
    for poller in pollers:
        seen = list(poller.print_to_seen.values())
        values["polling"].append(
            {
                "cadence_s": poller.cadence,
                "lines_seen": len(seen),
                "polls": poller.polls,
                "print_to_visible_median_s": median(seen),
                "print_to_visible_p99_s": percentile(seen, 0.99),
                "analytic_median_s": poller.cadence / 2,
                "analytic_p99_s": poller.cadence * 0.99,
                "ratio_to_push_median": median(seen) / push_median,
            }
        )
        parts.append(
            f"every {poller.cadence:g} s {ms(median(seen))} (x{median(seen) / push_median:,.0f})"
        )
    met = median(emit) < TARGET_MEDIAN
    line = (
        f"push latency: gateway emit -> Job median {ms(median(emit))}, p99 "
        f"{ms(percentile(emit, 0.99))} over {len(emit):,} events ({verdict(met, 'median < 2 ms')}; "
        f"a bare websockets loop: median {ms(median(bare))}); "
        f"engine print -> Job median {ms(push_median)} "
        f"({ms(median(default_print))} with the default "
        f"{GatewayOptions().log_push_interval * 1000:g} ms log coalescing); "
        f"REST polling print -> visible median: {', '.join(parts)}"
    )
    return Figure("push_latency", line, values, {"median_under_2ms": met})
