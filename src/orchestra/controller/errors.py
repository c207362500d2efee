"""Retry policy as exception types (kopf's idiom), raised from `Controller.reconcile`.

Owns: what a reconcile failure means for its key —
  * `TemporaryError(delay=)`: retry after `delay` seconds (or with the key's backoff if None);
  * `PermanentError`: log it and drop the key until its next change (no retry);
  * the API's `Conflict` (409, a stale resourceVersion) is not an error here: the runtime re-queues
    the key at once with its backoff, and the next reconcile reads the newer object.
Any other exception is logged and retried with backoff (client-go's HandleError + AddRateLimited).
Must not import: anything above the controller layer.
"""

from __future__ import annotations


class ReconcileError(Exception):
    """Base of the retry-policy exceptions."""


class TemporaryError(ReconcileError):
    """Retry the key: after `delay` seconds, or with per-key exponential backoff when None."""

    def __init__(self, message: str = "", *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(ReconcileError):
    """The key cannot converge as it stands: logged, forgotten, not retried until it changes."""
