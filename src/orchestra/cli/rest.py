"""A small synchronous client for the Kubernetes REST API (httpx), as the CLI needs it.

Owns: REST paths for a `ResourceType`, the bearer token, turning `Status` replies and connection
failures into `CliError`s, and reading watch streams line by line.
Must not import: the server side; only the api registry for resource types.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from orchestra.api.registry import ResourceType
from orchestra.cli.config import ClientConfig
from orchestra.cli.errors import ApiStatusError, CliError

TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
APPLY_PATCH = "application/apply-patch+yaml"
FIELD_MANAGER = "orchestra"


def resource_path(rt: ResourceType, namespace: str | None = None, name: str | None = None) -> str:
    """`/apis/apps/v1/namespaces/default/deployments/web`; no namespace means all namespaces."""
    base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    if rt.namespaced and namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{rt.plural}"
    return f"{base}/{name}" if name else base


class RestClient:
    """Blocking HTTP client bound to one server; every method returns decoded JSON dicts."""

    def __init__(self, config: ClientConfig, *, timeout: float = 30.0) -> None:
        self.config = config
        headers = {"User-Agent": "orchestra-cli", "Accept": "application/json"}
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        self._http = httpx.Client(
            base_url=config.server, headers=headers, timeout=timeout, verify=config.ssl_context()
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plain requests -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str | None = None,
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        content: bytes | None = None
        if body is not None:
            content = orjson.dumps(body)
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        try:
            resp = self._http.request(method, path, params=params, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise self._connection_error(exc) from None
        return self._decode(resp)

    def get(self, path: str, *, params: dict[str, str] | None = None, table: bool = False) -> dict[str, Any]:
        return self.request("GET", path, params=params, accept=TABLE_ACCEPT if table else None)

    def get_text(self, path: str, *, params: dict[str, str] | None = None) -> str:
        """GET a plain-text endpoint (`/readyz`, pod logs); errors as for JSON requests."""
        try:
            resp = self._http.get(path, params=params, headers={"Accept": "text/plain, */*"})
        except httpx.HTTPError as exc:
            raise self._connection_error(exc) from None
        if resp.status_code >= 400:
            self._decode(resp)
        return resp.text

    def get_optional(self, path: str) -> dict[str, Any] | None:
        """GET that answers None for 404 instead of raising."""
        try:
            return self.get(path)
        except ApiStatusError as exc:
            if exc.not_found:
                return None
            raise

    def apply(
        self, path: str, body: dict[str, Any], *, dry_run: bool = False, force: bool = False
    ) -> dict[str, Any]:
        """Server-side apply (PATCH application/apply-patch+yaml; JSON is valid YAML)."""
        params = {"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict", "force": str(force).lower()}
        if dry_run:
            params["dryRun"] = "All"
        return self.request("PATCH", path, params=params, body=body, content_type=APPLY_PATCH)

    def delete(self, path: str, *, propagation: str = "Background") -> dict[str, Any]:
        return self.request("DELETE", path, body={"propagationPolicy": propagation})

    # -- watch ----------------------------------------------------------------------------------

    def watch(
        self, path: str, *, params: dict[str, str] | None = None, table: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Yield watch events (`{"type", "object"}`) until the server ends the stream."""
        query = {**(params or {}), "watch": "true"}
        headers = {"Accept": TABLE_ACCEPT} if table else {}
        try:
            with self._http.stream(
                "GET", path, params=query, headers=headers, timeout=httpx.Timeout(30.0, read=None)
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    self._decode(resp)
                for line in resp.iter_lines():
                    if line.strip():
                        yield orjson.loads(line)
        except httpx.HTTPError as exc:
            raise self._connection_error(exc) from None

    # -- errors ---------------------------------------------------------------------------------

    def _decode(self, resp: httpx.Response) -> dict[str, Any]:
        try:
            data = orjson.loads(resp.content) if resp.content else {}
        except orjson.JSONDecodeError:
            data = None
        if resp.status_code >= 400:
            if isinstance(data, dict) and data.get("kind") == "Status":
                raise ApiStatusError(data, http_code=resp.status_code)
            text = resp.text.strip() or resp.reason_phrase
            raise ApiStatusError(
                {"code": resp.status_code, "reason": _reason(resp.status_code), "message": text},
                http_code=resp.status_code,
            )
        if not isinstance(data, dict):
            raise CliError(f"the server sent a reply that is not a JSON object ({resp.request.url.path})")
        return data

    def _connection_error(self, exc: httpx.HTTPError) -> CliError:
        where = urlsplit(self.config.server).netloc or self.config.server
        if isinstance(exc, httpx.ConnectError) and "CERTIFICATE" in str(exc).upper():
            return CliError(
                f"cannot verify the TLS certificate of {where}: {exc} (is the kubeconfig's CA current?)"
            )
        if isinstance(exc, httpx.ConnectError):
            return CliError(
                f"The connection to the server {where} was refused - is `orchestra up` running?"
            )
        if isinstance(exc, httpx.TimeoutException):
            return CliError(f"the server {where} did not answer in time ({type(exc).__name__})")
        return CliError(f"talking to the server {where} failed: {exc}")


def _reason(code: int) -> str:
    return {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        405: "MethodNotAllowed",
        409: "Conflict",
        413: "RequestEntityTooLarge",
        415: "UnsupportedMediaType",
        422: "Invalid",
        500: "InternalError",
    }.get(code, "Unknown")
