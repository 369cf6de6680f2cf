"""claude-session-server's Python client: standard library only, typed (``py.typed``)."""

from .client import ApiError, Client, Event, PermissionRequest, Session, Turn, verify_webhook

__all__ = ["ApiError", "Client", "Event", "PermissionRequest", "Session", "Turn", "verify_webhook"]
__version__ = "0.1.0"
