"""Concurrency: many jobs at once over one client, against the same jobs one after another.

Each job prints a marker of its own and returns its number. With an ``AsyncLinkisClient``, the
jobs are first run in sequence (submit, wait, read the result, then the next), then all at once
(``asyncio.gather`` of the same steps) over one client and one socket. Every event a job's
subscriber receives must name that job, every job's log must hold its own marker and no other,
and every job must end Succeed with its own result.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from bench.harness import BenchGateway, Figure, Size, ms
from linkis_magic import protocol as p

_MARKER = re.compile(r"marker-(\d+)-x")


def job_code(number: int) -> str:
    return f"print('marker-{number}-x')\n{number} * 2\n"


class Checker:
    """Collects what goes wrong with one job: foreign events, foreign markers, a wrong result."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.events = 0
        self.crossed: list[str] = []

    def on_event(self, job: Any, event: Any) -> None:
        if event is None or not hasattr(event, "exec_id"):
            return
        self.events += 1
        if job.exec_id and event.exec_id and event.exec_id != job.exec_id:
            self.crossed.append(f"event for {event.exec_id}")
        task_id = getattr(event, "task_id", None)
        if job.task_id is not None and task_id is not None and task_id != job.task_id:
            self.crossed.append(f"event for taskID {task_id}")
        if isinstance(event, p.LogLines):
            for found in _MARKER.findall(event.all):
                if int(found) != self.number:
                    self.crossed.append(f"log line of job {found}")

    def check(self, job: Any, result: Any) -> None:
        if job.status is not p.JobStatus.SUCCEED:
            self.crossed.append(f"ended {job.status}")
        markers = {int(m) for m in _MARKER.findall(job.logs.all)}
        if markers != {self.number}:
            self.crossed.append(f"log markers {sorted(markers)}")
        text = "".join(str(r.data) for r in result if r.kind == "text")
        if f"marker-{self.number}-x" not in text or str(self.number * 2) not in text:
            self.crossed.append(f"result {text!r}")


async def one_job(client: Any, number: int, checker: Checker) -> None:
    job = await client.submit(job_code(number), engine="python")
    job.subscribe(checker.on_event)
    await job.wait(timeout=600)
    checker.check(job, await job.results())


async def in_sequence(gw: BenchGateway, count: int) -> tuple[float, list[Checker]]:
    checkers = [Checker(i) for i in range(count)]
    async with gw.async_client() as client:
        started = time.perf_counter()
        for number, checker in enumerate(checkers):
            await one_job(client, number, checker)
        return time.perf_counter() - started, checkers


async def at_once(gw: BenchGateway, count: int) -> tuple[float, list[Checker]]:
    checkers = [Checker(i) for i in range(count)]
    async with gw.async_client() as client:
        started = time.perf_counter()
        await asyncio.gather(*(one_job(client, i, c) for i, c in enumerate(checkers)))
        return time.perf_counter() - started, checkers


async def warm_up(gw: BenchGateway) -> None:
    async with gw.async_client() as client:
        job = await client.submit("0", engine="python")
        await job.wait(timeout=120)


def run(gw: BenchGateway, size: Size) -> Figure:
    count = size.concurrency_jobs
    asyncio.run(warm_up(gw))
    sequence_s, sequence_checks = asyncio.run(in_sequence(gw, count))
    together_s, together_checks = asyncio.run(at_once(gw, count))
    problems = [
        f"job {c.number}: {problem}"
        for c in sequence_checks + together_checks
        for problem in c.crossed
    ]
    events = sum(c.events for c in together_checks)
    targets = {"all_finish_no_crossed_events": not problems}
    values = {
        "jobs": count,
        "sequence_s": sequence_s,
        "at_once_s": together_s,
        "speedup": sequence_s / together_s,
        "events_checked_at_once": events,
        "events_checked_in_sequence": sum(c.events for c in sequence_checks),
        "problems": problems[:50],
    }
    outcome = (
        f"all {count} Succeed, 0 of {events:,} events crossed jobs"
        if not problems
        else f"{len(problems)} PROBLEMS, first: {problems[0]}"
    )
    speed = (
        f"x{sequence_s / together_s:.1f} faster"
        if together_s <= sequence_s
        else f"x{together_s / sequence_s:.1f} SLOWER"
    )
    line = (
        f"concurrency: {count} jobs at once over one client in {ms(together_s)} against "
        f"{ms(sequence_s)} in sequence ({speed}); {outcome}"
    )
    return Figure("concurrency", line, values, targets)
