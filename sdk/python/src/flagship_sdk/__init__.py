"""FlagShip's Python SDK: the evaluation engine (``flagship_sdk.engine``)."""

__version__ = "0.1.0"
