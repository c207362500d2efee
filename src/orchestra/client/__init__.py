"""Clients of the API: the same interface in-process (over ApiCore) and over HTTP."""

from orchestra.client.base import Client, WatchEvent
from orchestra.client.local import LocalClient

__all__ = ["Client", "LocalClient", "WatchEvent"]
