"""linkis-magic: Jupyter magic, kernel and embedded gateway for Apache Linkis."""

__version__ = "0.1.0"


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext linkis_magic``: register %%linkis, %linkis and ``LinkisMagic`` settings."""
    from .magic import load_ipython_extension as load

    load(ipython)  # type: ignore[arg-type]


def unload_ipython_extension(ipython: object) -> None:
    """``%unload_ext linkis_magic``: remove them and close the client."""
    from .magic import unload_ipython_extension as unload

    unload(ipython)  # type: ignore[arg-type]
