"""linkis-magic: Jupyter magic, kernel and embedded gateway for Apache Linkis."""

__version__ = "0.1.0"
