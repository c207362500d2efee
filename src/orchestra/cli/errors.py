"""The CLI's one error type: a message for the user and an exit code, never a traceback.

Owns: `CliError` (and `ApiStatusError`, a server `Status` turned into kubectl's wording).
Must not import: the server side (`orchestra.app`, `orchestra.apiserver`).
"""

from __future__ import annotations

from typing import IO, Any

import click


class CliError(click.ClickException):
    """An error shown as `error: <message>` on stderr, exit code 1 (like kubectl)."""

    exit_code = 1

    def format_message(self) -> str:
        return f"error: {self.message}"

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.format_message(), err=True, file=file)


class ApiStatusError(CliError):
    """A `Status` failure from the API server (`Error from server (NotFound): ...`)."""

    def __init__(self, status: dict[str, Any], *, http_code: int) -> None:
        self.status = status
        self.code = int(status.get("code") or http_code)
        self.reason = str(status.get("reason") or "")
        details = status.get("details") or {}
        self.causes: list[dict[str, Any]] = list(details.get("causes") or [])
        self.details: dict[str, Any] = details
        message = str(status.get("message") or f"the server responded with HTTP {self.code}")
        super().__init__(message)

    @property
    def not_found(self) -> bool:
        return self.code == 404

    def format_message(self) -> str:
        if self.code == 401:
            return "error: You must be logged in to the server (Unauthorized)"
        if self.code == 422 and self.details.get("kind") and self.causes:
            return self.invalid_message()
        if not self.reason:
            return f"Error from server: {self.message}"
        return f"Error from server ({self.reason}): {self.message}"

    def invalid_message(self) -> str:
        """kubectl's wording for 422: `The Deployment "web" is invalid: spec.x: Required value`."""
        head = f'The {self.details.get("kind")} "{self.details.get("name", "")}" is invalid: '
        parts = [f"{c['field']}: {c.get('message', '')}" if c.get("field") else str(c.get("message", ""))
                 for c in self.causes]
        if len(parts) == 1:
            return head + parts[0]
        return head + "\n" + "\n".join(f"* {p}" for p in parts)
