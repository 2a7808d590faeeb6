"""FlagShip's Python SDK: the client (``FlagShipClient``) and the evaluation engine.

``flagship_sdk.engine`` compiles and evaluates rulesets; ``FlagShipClient`` keeps one in sync with
a FlagShip server (or evaluates remotely with a client key).
"""

__version__ = "0.1.0"

from .client import ClientEvent, ClientStatus, EvaluationDetails, FlagShipClient

__all__ = ["ClientEvent", "ClientStatus", "EvaluationDetails", "FlagShipClient", "__version__"]
