"""The embedded Linkis-compatible gateway: tornado HTTP and WebSocket routes, jobs, engines."""

from __future__ import annotations

import atexit
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from linkis_magic.gateway.app import GatewayServer

__all__ = ["GatewayServer", "start_embedded"]

_embedded: GatewayServer | None = None
_embedded_lock = threading.Lock()


def start_embedded(data_dir: str | Path | None = None) -> GatewayServer:
    """The process-wide embedded gateway on a free loopback port, started once and reused.

    Its data dir is ``data_dir``, else LINKIS_MAGIC_DATA_DIR, else
    ~/.local/share/linkis-magic/gateway. It stops when the process exits.
    """
    global _embedded
    from linkis_magic.gateway.app import GatewayServer

    with _embedded_lock:
        if _embedded is not None and _embedded.running:
            return _embedded
        server = GatewayServer(host="127.0.0.1", port=0, data_dir=data_dir)
        server.start()
        _embedded = server
        atexit.register(server.stop)
        return server


def __getattr__(name: str) -> object:
    if name == "GatewayServer":
        from linkis_magic.gateway.app import GatewayServer

        return GatewayServer
    raise AttributeError(name)
