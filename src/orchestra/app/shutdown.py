"""Stopping a cluster: a graceful stop, and a forced one that cuts the graceful clean-up short.

Owns: the cancel scope the whole cluster runs in (`stop()` cancels it), and the shielded scopes
clean-up work runs in after that (stopping pods with --stop-pods, closing the runtime, letting the
Podman service go). `force()` — a second Ctrl-C or SIGTERM — cancels those too, so the process
exits in moments; a clean-up entered after `force()` starts already cancelled.
Must not import: cli.

    shutdown = Shutdown()
    with shutdown.scope:
        ...                            # run the cluster; shutdown.stop() ends it
    with shutdown.shielded(30):        # in a finally: clean-up that outlives the stop
        await stop_pods()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import trio


class Shutdown:
    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.forced = False
        self._cleanups: set[trio.CancelScope] = set()

    @property
    def stopping(self) -> bool:
        return self.scope.cancel_called

    def stop(self) -> None:
        """Stop the cluster; clean-up still runs."""
        self.scope.cancel()

    def force(self) -> None:
        """Stop now: cancel the cluster and every clean-up in progress or to come."""
        self.forced = True
        self.scope.cancel()
        for scope in list(self._cleanups):
            scope.cancel()

    @contextmanager
    def shielded(self, timeout: float = float("inf")) -> Iterator[trio.CancelScope]:
        """A scope for clean-up: shielded from the stop, bounded by `timeout`, cancelled by force()."""
        with trio.CancelScope(shield=True, deadline=trio.current_time() + timeout) as scope:
            if self.forced:
                scope.cancel()
            self._cleanups.add(scope)
            try:
                yield scope
            finally:
                self._cleanups.discard(scope)
