"""FlagShip's SDK client: local evaluation from a synchronised ruleset, or remote evaluation."""

from .client import FlagShipClient
from .details import ClientErrorCode, ClientEvent, ClientStatus, EvaluationDetails

__all__ = ["ClientErrorCode", "ClientEvent", "ClientStatus", "EvaluationDetails", "FlagShipClient"]
