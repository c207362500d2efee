"""What every client command shares: the kubeconfig/namespace options and a lazily built client.

Owns: the `@client_options` decorator (`--kubeconfig`, `-n/--namespace`, `--request-timeout`) and
`Session`, which resolves them (flag, then ORCHESTRA_* environment, then the state directory).
Must not import: the server side.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from orchestra.api.registry import DEFAULT_REGISTRY, Registry
from orchestra.cli.config import ClientConfig, load_client_config
from orchestra.cli.kinds import discovered, needs_discovery
from orchestra.cli.rest import RestClient

F = TypeVar("F", bound=Callable[..., Any])


class Session:
    def __init__(self, kubeconfig: str | None, namespace: str | None, timeout: float) -> None:
        self.kubeconfig = kubeconfig
        self.namespace_flag = namespace
        self.timeout = timeout
        self._config: ClientConfig | None = None
        self._client: RestClient | None = None
        self._registry: Registry | None = None

    @property
    def config(self) -> ClientConfig:
        if self._config is None:
            self._config = load_client_config(self.kubeconfig)
        return self._config

    @property
    def namespace(self) -> str:
        """`-n`, else the kubeconfig context's namespace, else `default`."""
        return self.namespace_flag or self.config.namespace

    def registry(self, names: Iterable[str] = ()) -> Registry:
        """The kinds to resolve `names` with: the built-in ones, or (for any other name, and for
        manifests, which may hold custom resources) the server's, read from its discovery once."""
        names = list(names)
        if names and not needs_discovery(names):
            return DEFAULT_REGISTRY
        if self._registry is None:
            self._registry = discovered(self.client)
        return self._registry

    def forget_kinds(self) -> None:
        """Read discovery again on next use (after CRDs were applied)."""
        self._registry = None

    @property
    def client(self) -> RestClient:
        if self._client is None:
            self._client = RestClient(self.config, timeout=self.timeout)
            click.get_current_context().call_on_close(self._client.close)
        return self._client


def client_options(func: F) -> F:
    """Adds the connection options and passes a `session: Session` keyword instead of them."""

    @click.option(
        "--kubeconfig",
        envvar="ORCHESTRA_KUBECONFIG",
        metavar="FILE",
        help="kubeconfig to use [env ORCHESTRA_KUBECONFIG; default: <state dir>/kubeconfig].",
    )
    @click.option(
        "-n", "--namespace", metavar="NS", help="Namespace [default: the kubeconfig context's, else default]."
    )
    @click.option(
        "--request-timeout",
        type=float,
        default=30.0,
        show_default=True,
        metavar="SECONDS",
        help="How long to wait for each request.",
    )
    @functools.wraps(func)
    def wrapper(
        *args: Any, kubeconfig: str | None, namespace: str | None, request_timeout: float, **kw: Any
    ) -> Any:
        return func(*args, session=Session(kubeconfig, namespace, request_timeout), **kw)

    return wrapper  # type: ignore[return-value]
