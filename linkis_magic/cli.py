"""The ``linkis-magic`` command: ``gateway`` (serve the embedded gateway), ``demo``, and more.

Each subcommand is a function that adds its parser; modules elsewhere in the package may offer
``register_cli(subparsers)`` (see ``_OPTIONAL_COMMANDS``) to add theirs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# Modules that may define ``register_cli(subparsers)``; missing ones are skipped.
_OPTIONAL_COMMANDS = ("linkis_magic.kernelspecs",)

Subparsers = Any  # argparse's _SubParsersAction, which typeshed keeps private


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linkis-magic", description="Jupyter magic, kernel and embedded gateway for Linkis"
    )
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for register in (_add_gateway, _add_demo):
        register(sub)
    for module_name in _OPTIONAL_COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        hook: Callable[[Subparsers], None] | None = getattr(module, "register_cli", None)
        if hook is not None:
            hook(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=str(args.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    result = args.func(args)
    return int(result or 0)


# --------------------------------------------------------------------------- gateway


def _add_gateway(sub: Subparsers) -> None:
    cmd = sub.add_parser("gateway", help="run the embedded Linkis-compatible gateway")
    cmd.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    cmd.add_argument("--port", type=int, default=9001, help="port (9001; 0 picks a free one)")
    cmd.add_argument("--data-dir", default=None, help="users, history, logs and results")
    cmd.add_argument(
        "--engine-idle-timeout",
        type=float,
        default=600.0,
        help="seconds an idle engine process lives (600)",
    )
    cmd.set_defaults(func=_run_gateway)


def _run_gateway(args: argparse.Namespace) -> int:
    from linkis_magic.gateway.app import GatewayServer

    server = GatewayServer(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        engine_idle_timeout=args.engine_idle_timeout,
    )
    server.start()
    print(f"Linkis gateway listening on {server.url}", flush=True)
    print(f"WebSocket: {server.ws_url}", flush=True)
    print(f"Data dir: {server.data_dir}", flush=True)
    print(_login_hint(server), flush=True)
    server.serve_forever()
    return 0


def _login_hint(server: Any) -> str:
    """How to log in, naming where the secrets are, never the secrets themselves."""
    user = server.credentials.user
    if server.auth.credentials_path.exists():
        return (
            f"Log in as user {user!r}: password and token are in {server.auth.credentials_path}"
            " (POST /api/rest_j/v1/user/login, or Token-User/Token-Code headers)"
        )
    return (
        f"Log in as user {user!r} with the password or token from LINKIS_PASSWORD / LINKIS_TOKEN"
        " (POST /api/rest_j/v1/user/login, or Token-User/Token-Code headers)"
    )


# --------------------------------------------------------------------------- demo

_DEMO_CODE = """\
import pandas as pd
print("Hello from the embedded Linkis gateway, ${who}!")
pd.DataFrame({"engine": ["python", "shell", "spark"], "jobs": [1, 0, 0]})
"""


def _add_demo(sub: Subparsers) -> None:
    cmd = sub.add_parser("demo", help="run one job through an embedded gateway")
    cmd.add_argument("--data-dir", default=None, help="gateway data dir (a temporary one)")
    cmd.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the job")
    cmd.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    if args.data_dir:
        return _demo(Path(args.data_dir), args.timeout)
    with tempfile.TemporaryDirectory(prefix="linkis-magic-demo-") as tmp:
        return _demo(Path(tmp), args.timeout)


def _demo(data_dir: Path, timeout: float) -> int:
    import httpx
    from websockets.sync.client import connect

    from linkis_magic import protocol as p
    from linkis_magic.gateway.app import GatewayServer

    server = GatewayServer(data_dir=data_dir)
    server.auth.add_user("demo", password="demo-password")
    server.start()
    try:
        print(f"Embedded gateway on {server.url}")
        with httpx.Client(base_url=server.url, timeout=30) as http:
            reply = http.post(
                p.REST_PREFIX + "/user/login",
                json={"userName": "demo", "password": "demo-password"},
            )
            reply.raise_for_status()
            ticket = http.cookies[p.TICKET_COOKIE]
            frame = p.build_execute_frame(
                _DEMO_CODE, "python", "python", tag=uuid.uuid4().hex, variables={"who": "demo"}
            )
            print("Submitting a python job over the WebSocket ...")
            status, task_id, log_text = _follow(server.ws_url, ticket, frame, timeout, connect)
            print("---- log ----")
            print(log_text.rstrip())
            print("---- status ----")
            print(status)
            if status != p.JobStatus.SUCCEED.value or task_id is None:
                return 1
            print("---- results ----")
            _print_results(http, task_id)
    finally:
        server.stop()
    return 0


def _follow(
    ws_url: str, ticket: str, frame: dict[str, Any], timeout: float, connect: Any
) -> tuple[str, int | None, str]:
    from linkis_magic import protocol as p

    reader = p.FrameReader()
    logs: list[str] = []
    status = "unknown"
    task_id: int | None = None
    deadline = time.monotonic() + timeout
    headers = {"Cookie": f"{p.TICKET_COOKIE}={ticket}"}
    with connect(ws_url, additional_headers=headers, max_size=None) as ws:
        ws.send(p.encode_frame(frame))
        while time.monotonic() < deadline:
            try:
                raw = ws.recv(timeout=max(deadline - time.monotonic(), 0.01))
            except TimeoutError:
                break
            event = reader.feed(raw)
            if isinstance(event, p.ExecuteAccepted):
                task_id = event.task_id
                print(f"execID {event.exec_id}, taskID {event.task_id}")
            elif isinstance(event, p.LogLines):
                logs.append(event.all)
            elif isinstance(event, p.StatusChanged):
                print(f"status: {event.status.value}")
                status = event.status.value
                if event.status.is_terminal:
                    break
            elif isinstance(event, p.ErrorReply):
                print(f"error: {event.message}")
                status = "error"
                break
    return status, task_id, "".join(logs)


def _print_results(http: Any, task_id: int) -> None:
    from linkis_magic import protocol as p

    task = http.get(f"{p.REST_PREFIX}/jobhistory/{task_id}/get").json()["data"]["task"]
    tree = http.get(
        p.REST_PREFIX + "/filesystem/getDirFileTrees", params={"path": task["resultLocation"]}
    ).json()["data"]["dirFileTrees"]
    for child in (tree or {}).get("children") or []:
        page = http.get(p.REST_PREFIX + "/filesystem/openFile", params={"path": child["path"]})
        data = page.json()["data"]
        if data["type"] == "2":
            print("\t".join(c["columnName"] for c in data["metadata"]))
        for row in data["fileContent"]:
            print("\t".join(row))
        print(json.dumps({"resultSet": child["name"], "type": data["type"]}))


if __name__ == "__main__":
    sys.exit(main())
