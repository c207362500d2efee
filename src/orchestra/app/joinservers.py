"""The API servers a joined node fails over between, as a k3s agent learns them.

Owns: the known servers of a joined node — the URL given to `orchestra join` plus every server the
`default/kubernetes` Endpoints list (every live server keeps them: app/servers.py), read every few
seconds through the node's own client (system:nodes may list endpoints), handed to that client
(`HttpClient.set_servers`: requests, watches, lease heartbeats and CSR rotation move to the next one when
theirs stops answering) and kept in `<state-dir>/servers.json`, from which a restarted join starts (so
it reaches a surviving server when the one it joined through is gone). Loopback addresses are learned
only by a node that joined through a loopback URL (a server on another host listing 127.0.0.1 means
itself, not this host).
Must not import: cli.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson
import trio

from orchestra.api.errors import ApiError
from orchestra.client.http import HttpClient

log = logging.getLogger("orchestra.join")
FILE = "servers.json"


def load_known(state_dir: Path) -> list[str]:
    """The servers an earlier run learned ([] when none or unreadable)."""
    try:
        doc = orjson.loads((state_dir / FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return []
    servers = doc.get("servers") if isinstance(doc, dict) else None
    return [str(s) for s in servers or [] if isinstance(s, str) and s.startswith("https://")]


def save_known(state_dir: Path, servers: list[str]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / (FILE + ".tmp")
    tmp.write_bytes(orjson.dumps({"servers": servers}, option=orjson.OPT_INDENT_2))
    os.replace(tmp, state_dir / FILE)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def endpoint_urls(endpoints: dict[str, Any], *, loopback: bool) -> list[str]:
    """https://IP:PORT of every address and port of the `kubernetes` Endpoints."""
    urls = []
    for subset in endpoints.get("subsets") or []:
        for address in subset.get("addresses") or []:
            ip = str(address.get("ip") or "")
            if not ip or (_loopback(ip) and not loopback):
                continue
            host = f"[{ip}]" if ":" in ip else ip
            ports = [port["port"] for port in subset.get("ports") or [] if port.get("port")]
            urls += [f"https://{host}:{port}" for port in ports]
    return sorted(set(urls))


def known_servers(join_url: str, learned: list[str]) -> list[str]:
    """The join URL first, then the learned servers."""
    return list(dict.fromkeys([join_url.rstrip("/"), *learned]))


async def follow_servers(client: HttpClient, join_url: str, state_dir: Path, *, interval: float = 5.0,
                         task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Learn the servers from the `kubernetes` Endpoints every `interval` until cancelled."""
    rt = client.kind("Endpoints")
    loopback = _loopback(urlparse(join_url).hostname or "")
    saved = load_known(state_dir)
    task_status.started()
    while True:
        try:
            items, _ = await client.list(rt, "default", field_selector="metadata.name=kubernetes")
        except (ApiError, OSError) as exc:  # every server down: the client keeps trying those it knows
            log.debug("could not read the kubernetes Endpoints: %s", exc)
        else:
            learned = endpoint_urls(items[0], loopback=loopback) if items else []
            if learned:  # (an empty list: the last server stopping; keep what was known)
                servers = known_servers(join_url, learned)
                client.set_servers(servers)
                if servers != saved:
                    log.info("API servers: %s", ", ".join(servers))
                    save_known(state_dir, servers)
                    saved = servers
        await trio.sleep(interval)
