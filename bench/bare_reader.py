"""The baseline reader: a bare ``websockets`` loop following one job's pushes, in its own process.

``python -m bench.bare_reader WS_URL EXEC_ID``, with the session cookie in $LINKIS_BENCH_COOKIE,
subscribes to the job (a status frame), prints ``subscribed``, then reads every frame with
``json.loads`` alone until the job's terminal status, and prints one JSON line: frames, lines,
each frame's emit->receive latency, and the receive time of every benchmark line
(``L <n> <time>`` or ``T <n>``) it saw.

No parsing beyond ``json.loads``, no routing, no state: the least any client can do with the
stream, so its rate is the ceiling for the client and its latency the floor.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from typing import Any

from websockets.asyncio.client import connect

from linkis_magic import protocol as p

_MARK = re.compile(r" [LT] (\d+)")
TERMINAL = {s.value for s in p.JobStatus if s.is_terminal}


async def follow(url: str, cookie: str, exec_id: str) -> dict[str, Any]:
    latencies: list[float] = []
    lines = frames = 0
    seen: dict[int, float] = {}
    async with connect(
        url, additional_headers={"Cookie": cookie}, max_size=None, compression=None
    ) as ws:
        await ws.send(json.dumps(p.build_job_frame(exec_id, "status")))
        announced = False
        async for message in ws:
            now = time.monotonic()
            frame = json.loads(message)
            data = frame.get("data") or {}
            if not announced:
                print("subscribed", flush=True)
                announced = True
            stamp = data.get(p.EMIT_STAMP_KEY)
            if stamp is None:
                continue
            frames += 1
            latencies.append(now - stamp)
            log = data.get("log")
            if log:
                text = log[3]
                lines += text.count("\n")
                for match in _MARK.finditer(text):
                    seen.setdefault(int(match[1]), now)
            if data.get("status") in TERMINAL and frame["method"].endswith("/status"):
                break
    return {"frames": frames, "lines": lines, "emit_to_recv": latencies, "seen": seen}


def main(argv: list[str]) -> int:
    url, exec_id = argv
    result = asyncio.run(follow(url, os.environ["LINKIS_BENCH_COOKIE"], exec_id))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
