"""The REST-polling baseline, in its own process: what a client without pushes sees, and when.

``python -m bench.poller BASE_URL EXEC_ID CADENCE``, with the session cookie in
$LINKIS_BENCH_COOKIE, prints ``ready``, then every CADENCE seconds reads the job's ``/status``
and its new log lines (``/log?fromLine=N&size=-1``, as Linkis's web console does), until the
job's status is terminal. It then prints one JSON line: how many polls it made and, for every
benchmark line ``L <n> <engine time>``, how long after the engine printed it the poll that
brought it returned.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from typing import Any

import httpx

from linkis_magic import protocol as p

LOG_PAGE = 10_000  # lines a /log?size=-1 read returns at most
_LINE = re.compile(r" L (\d+) ([0-9.e+-]+)$")


def printed_lines(text: str) -> list[tuple[int, float]]:
    """``(number, engine print time)`` of every benchmark line in a chunk of log text."""
    out = []
    for line in text.splitlines():
        match = _LINE.search(line)
        if match:
            out.append((int(match[1]), float(match[2])))
    return out


def poll(base_url: str, cookie: str, exec_id: str, cadence: float) -> dict[str, Any]:
    name, _, value = cookie.partition("=")
    seen: dict[int, float] = {}
    polls = 0
    from_line = 1
    with httpx.Client(base_url=base_url + p.REST_PREFIX, cookies={name: value}, timeout=60) as h:

        def get(op: str, **params: Any) -> dict[str, Any]:
            reply = h.get(f"/entrance/{exec_id}/{op}", params=params)
            reply.raise_for_status()
            data: dict[str, Any] = reply.json()["data"]
            return data

        print("ready", flush=True)
        tick = time.monotonic()
        while True:
            status = get("status")["status"]
            while True:  # size=-1 reads at most 10000 lines: read on while pages come back full
                data = get("log", fromLine=from_line, size=-1)
                now = time.monotonic()
                text = p.split_log_buckets(data.get("log"))[3]
                for number, printed in printed_lines(text):
                    seen.setdefault(number, now - printed)
                after = int(data.get("fromLine") or from_line)
                full = after - from_line >= LOG_PAGE
                from_line = after
                if not full:
                    break
            polls += 1
            if p.JobStatus.parse(status).is_terminal:
                return {"polls": polls, "seen": seen}
            tick += cadence
            time.sleep(max(0.0, tick - time.monotonic()))  # the baseline's own cadence


def main(argv: list[str]) -> int:
    base_url, exec_id, cadence = argv
    cookie = os.environ["LINKIS_BENCH_COOKIE"]
    print(json.dumps(poll(base_url, cookie, exec_id, float(cadence))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
