"""SQLite job history of the embedded gateway: one row per job, taskID from AUTOINCREMENT.

Only the gateway's event-loop thread uses a store; logs and result sets are files elsewhere.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from linkis_magic.protocol import JobStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    task_id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT UNIQUE,
    exec_id TEXT,
    rest_exec_id TEXT,
    instance TEXT,
    um_user TEXT NOT NULL,
    execute_user TEXT NOT NULL,
    creator TEXT NOT NULL,
    engine TEXT NOT NULL,
    engine_label TEXT,
    run_type TEXT,
    code TEXT,
    params_json TEXT,
    source_json TEXT,
    labels_json TEXT,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    progress_info_json TEXT,
    log_path TEXT,
    result_location TEXT,
    err_code INTEGER,
    err_desc TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    started_ms INTEGER,
    ended_ms INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_user ON jobs (um_user, task_id);
"""

ACTIVE_STATUSES = (
    JobStatus.INITED.value,
    JobStatus.WAIT_FOR_RETRY.value,
    JobStatus.SCHEDULED.value,
    JobStatus.RUNNING.value,
)

_JSON_COLUMNS = ("params_json", "source_json", "labels_json", "progress_info_json")


def now_ms() -> int:
    return int(time.time() * 1000)


class JobStore:
    """The ``jobs`` table of ``jobs.db`` in the data dir."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def insert(self, row: Mapping[str, Any]) -> int:
        """Insert a new job; returns its taskID."""
        values = _encode(row)
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        cur = self._db.execute(
            f"INSERT INTO jobs ({names}) VALUES ({marks})", list(values.values())
        )
        task_id = cur.lastrowid
        assert task_id is not None
        return int(task_id)

    def update(self, task_id: int, **fields: Any) -> None:
        values = _encode(fields)
        values.setdefault("updated_ms", now_ms())
        assignments = ", ".join(f"{k} = ?" for k in values)
        self._db.execute(
            f"UPDATE jobs SET {assignments} WHERE task_id = ?", [*values.values(), task_id]
        )

    def get(self, task_id: int) -> dict[str, Any] | None:
        row = self._db.execute("SELECT * FROM jobs WHERE task_id = ?", (task_id,)).fetchone()
        return _decode(row) if row else None

    def get_by_job_id(self, job_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return _decode(row) if row else None

    def list_for_user(
        self, user: str, limit: int = 50, offset: int = 0, status: str | None = None
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM jobs WHERE um_user = ?"
        args: list[Any] = [user]
        if status:
            sql += " AND status = ?"
            args.append(status)
        sql += " ORDER BY task_id DESC LIMIT ? OFFSET ?"
        args += [limit, offset]
        return [_decode(r) for r in self._db.execute(sql, args).fetchall()]

    def count_for_user(self, user: str, status: str | None = None) -> int:
        sql = "SELECT COUNT(*) FROM jobs WHERE um_user = ?"
        args: list[Any] = [user]
        if status:
            sql += " AND status = ?"
            args.append(status)
        return int(self._db.execute(sql, args).fetchone()[0])

    def active(self) -> list[dict[str, Any]]:
        marks = ", ".join("?" for _ in ACTIVE_STATUSES)
        rows = self._db.execute(f"SELECT * FROM jobs WHERE status IN ({marks})", ACTIVE_STATUSES)
        return [_decode(r) for r in rows.fetchall()]


def _encode(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in _JSON_COLUMNS and value is not None and not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False)
        elif isinstance(value, JobStatus):
            value = value.value
        out[key] = value
    return out


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for key in _JSON_COLUMNS:
        if out.get(key):
            try:
                out[key] = json.loads(out[key])
            except ValueError:
                out[key] = None
    return out
