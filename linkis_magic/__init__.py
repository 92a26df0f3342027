"""linkis-magic: Jupyter magic, kernel and embedded gateway for Apache Linkis."""

from typing import Any

__version__ = "0.1.0"

# Public names, imported on first use so that ``import linkis_magic`` (and the gateway) stay light.
_LAZY = {
    "LinkisClient": "linkis_magic.client",
    "AsyncLinkisClient": "linkis_magic.client",
    "Job": "linkis_magic.jobs",
    "AsyncJob": "linkis_magic.jobs",
    "ResultSet": "linkis_magic.results",
    "JobStatus": "linkis_magic.protocol",
    "LinkisError": "linkis_magic.errors",
    "AuthError": "linkis_magic.errors",
    "ConnectionError": "linkis_magic.errors",
    "ProtocolError": "linkis_magic.errors",
    "ServerError": "linkis_magic.errors",
    "JobError": "linkis_magic.errors",
    "JobCancelled": "linkis_magic.errors",
    "JobTimeout": "linkis_magic.errors",
}

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'linkis_magic' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext linkis_magic``: register %%linkis, %linkis and ``LinkisMagic`` settings."""
    from .magic import load_ipython_extension as load

    load(ipython)  # type: ignore[arg-type]


def unload_ipython_extension(ipython: object) -> None:
    """``%unload_ext linkis_magic``: remove them and close the client."""
    from .magic import unload_ipython_extension as unload

    unload(ipython)  # type: ignore[arg-type]
