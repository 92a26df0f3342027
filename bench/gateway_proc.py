"""The benchmarks' gateway: an embedded GatewayServer in a process of its own, driven over stdin.

``python -m bench.gateway_proc DATA_DIR`` prints one JSON line (url, user, password, token,
instance), then answers one JSON line per JSON command read from stdin, until stdin closes:

- ``{"cmd": "options", "log_push_interval": 0.0}`` sets GatewayOptions fields on the running server.
- ``{"cmd": "table", "rows": N}`` writes a 6-column result set of N rows with the gateway's
  result-set writer and registers it to a finished job in the gateway's store (so the client
  reads it with jobhistory, getDirFileTrees and openFile like any other job's result).

The gateway runs in its own process so that the client's time and memory are measured alone, as
they would be against a remote gateway.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from linkis_magic import protocol as p
from linkis_magic.gateway.app import GatewayServer
from linkis_magic.gateway.jobs import ENTRANCE_APP
from linkis_magic.gateway.resultsets import NULL, TABLE, ResultDir
from linkis_magic.gateway.store import JobStore, now_ms

USER = "bench"
CREATOR = "BENCH"

TABLE_COLUMNS = [
    ("id", "bigint"),
    ("score", "double"),
    ("name", "string"),
    ("active", "boolean"),
    ("day", "date"),
    ("amount", "decimal(12,2)"),
]
NULL_EVERY = 997  # every 997th row has NULLs in the nullable columns

_EPOCH = dt.date(2020, 1, 1)


def table_rows(count: int) -> Iterator[list[str]]:
    """The benchmark table's rows as Linkis strings (what an engine writes)."""
    for i in range(count):
        empty = i % NULL_EVERY == NULL_EVERY - 1
        yield [
            str(i),
            NULL if empty else repr(i * 0.5 + 0.25),
            NULL if empty else f"name-{i:07d}",
            "true" if i % 3 else "false",
            (_EPOCH + dt.timedelta(days=i % 3650)).isoformat(),
            NULL if empty else f"{i // 100}.{i % 100:02d}",
        ]


def register_table(server: GatewayServer, store: JobStore, rows: int) -> dict[str, Any]:
    """A finished job of user ``bench`` whose one result set is the benchmark table."""
    created = now_ms()
    task_id = store.insert(
        {
            "um_user": USER,
            "execute_user": USER,
            "creator": CREATOR,
            "engine": "python",
            "engine_label": "python",
            "run_type": "python",
            "code": f"# {rows} rows written by bench.gateway_proc",
            "status": p.JobStatus.SUCCEED,
            "progress": 1.0,
            "instance": server.instance,
            "created_ms": created,
            "updated_ms": created,
            "started_ms": created,
            "ended_ms": created,
        }
    )
    job_id = f"{CREATOR}_{USER}_python_{task_id}"
    exec_id = p.encode_legacy_exec_id(CREATOR, "python", server.instance, job_id)
    result_dir = server.data_dir / "results" / USER / "bench" / str(task_id)
    log_path = server.data_dir / "logs" / USER / "bench" / f"{task_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    line = p.format_log_line("INFO", f"{rows} rows written", dt.datetime.now())
    log_path.write_text(line + "\n", encoding="utf-8")

    metadata = [{"columnName": n, "dataType": t, "comment": "NULL"} for n, t in TABLE_COLUMNS]
    with ResultDir(result_dir).new(TABLE, metadata) as writer:
        writer.write_rows(table_rows(rows), rows)
    store.update(
        task_id,
        job_id=job_id,
        exec_id=exec_id,
        rest_exec_id=p.encode_rest_exec_id(ENTRANCE_APP, server.instance, job_id),
        log_path=log_path.as_uri(),
        result_location=result_dir.as_uri(),
        ended_ms=now_ms(),
    )
    return {"exec_id": exec_id, "task_id": task_id, "rows": rows}


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    data_dir = Path(argv[0])
    password = secrets.token_urlsafe(16)
    token = secrets.token_urlsafe(24)
    server = GatewayServer(host="127.0.0.1", port=0, data_dir=data_dir, engine_idle_timeout=600.0)
    server.auth.add_user(USER, password=password, token=token)
    server.start()
    # A second connection to the history database: the gateway reads rows on every request.
    store = JobStore(server.data_dir / "jobs.db")
    hello = {
        "url": server.url,
        "user": USER,
        "password": password,
        "token": token,
        "instance": server.instance,
    }
    print(json.dumps(hello), flush=True)
    try:
        for raw in sys.stdin:
            command = json.loads(raw)
            print(json.dumps(_handle(server, store, command)), flush=True)
    finally:
        store.close()
        server.stop()
    return 0


def _handle(server: GatewayServer, store: JobStore, command: dict[str, Any]) -> dict[str, Any]:
    cmd = command.pop("cmd", None)
    if cmd == "options":
        for key, value in command.items():
            if not hasattr(server.options, key):
                return {"error": f"no gateway option {key!r}"}
            setattr(server.options, key, value)
        return {"ok": True}
    if cmd == "table":
        return register_table(server, store, int(command["rows"]))
    return {"error": f"unknown command {cmd!r}"}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
