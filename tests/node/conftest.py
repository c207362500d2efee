"""The real-Podman fixture is shared with the runtime contract suite (one service per session)."""

from tests.runtime.conftest import podman_socket

__all__ = ["podman_socket"]
