"""The ``linkis-magic`` command: ``gateway`` (serve the embedded gateway), ``demo``, and more.

Each subcommand is a function that adds its parser; modules elsewhere in the package may offer
``register_cli(subparsers)`` (see ``_OPTIONAL_COMMANDS``) to add theirs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

# Modules that may define ``register_cli(subparsers)``; missing ones are skipped.
_OPTIONAL_COMMANDS = ("linkis_magic.kernelspecs",)

Subparsers = Any  # argparse's _SubParsersAction, which typeshed keeps private


def build_parser(optional: bool = True) -> argparse.ArgumentParser:
    """The command's parser; ``optional=False`` leaves out the commands of other modules."""
    parser = argparse.ArgumentParser(
        prog="linkis-magic", description="Jupyter magic, kernel and embedded gateway for Linkis"
    )
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for register in (_add_gateway, _add_demo):
        register(sub)
    for module_name in _OPTIONAL_COMMANDS if optional else ():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        hook: Callable[[Subparsers], None] | None = getattr(module, "register_cli", None)
        if hook is not None:
            hook(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # The gateway must start fast: other modules' commands (and their imports) are not loaded
    # when the command line names one of ours.
    ours = bool(set(argv[:3]) & {"gateway", "demo"})
    args = build_parser(optional=not ours).parse_args(argv)
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
    cmd.add_argument(
        "--engine",
        action="append",
        default=[],
        metavar="NAME=MODULE:CLASS",
        help="add or replace an engine (an Engine subclass importable by engine processes)",
    )
    cmd.set_defaults(func=_run_gateway)


def _run_gateway(args: argparse.Namespace) -> int:
    from linkis_magic.gateway.app import GatewayServer

    engines = {}
    for spec in args.engine:
        name, sep, target = spec.partition("=")
        if not sep or ":" not in target or not name.strip():
            print(
                f"linkis-magic gateway: --engine wants NAME=MODULE:CLASS, not {spec!r}",
                file=sys.stderr,
            )
            return 2
        engines[name.strip().lower()] = target.strip()
    server = GatewayServer(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        engine_idle_timeout=args.engine_idle_timeout,
        engines=engines,
    )
    try:
        server.start()
    except OSError as exc:
        print(
            f"linkis-magic gateway: cannot listen on {args.host}:{args.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    print(f"Linkis gateway listening on {server.url}", flush=True)
    print(f"WebSocket: {server.ws_url}", flush=True)
    print(f"Data dir: {server.data_dir}", flush=True)
    print(_login_hint(server), flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"Warning: listening on {args.host} makes the gateway reachable from other machines "
            "over plain HTTP; put it behind TLS or keep it on 127.0.0.1.",
            file=sys.stderr,
            flush=True,
        )
    server.serve_forever()
    return 0


def _login_hint(server: Any) -> str:
    """How to log in, naming where the secrets are, never the secrets themselves."""
    user = server.credentials.user
    saved = server.auth.read_credentials()
    if saved is not None and saved.user == user and saved.password:
        return (
            f"Log in as user {user!r}: password and token are in {server.auth.credentials_path}"
            " (POST /api/rest_j/v1/user/login, or Token-User/Token-Code headers)"
        )
    return (
        f"Log in as user {user!r} with the password or token from LINKIS_PASSWORD / LINKIS_TOKEN"
        " (POST /api/rest_j/v1/user/login, or Token-User/Token-Code headers)"
    )


# --------------------------------------------------------------------------- demo


def _add_demo(sub: Subparsers) -> None:
    from linkis_magic.demo import add_arguments

    cmd = sub.add_parser(
        "demo", help="run notebooks/01-quickstart headless against an embedded gateway"
    )
    add_arguments(cmd)
    cmd.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from linkis_magic.demo import run_demo

    return run_demo(args.notebook, args.output_dir, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
