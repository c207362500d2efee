"""HTTP server benchmark: hypercorn's trio worker vs orchestra's h11 server, both with TLS, under wrk.

Two apps: a trivial ASGI app (the server's own cost) and the real ApiServer answering a GET of one
ConfigMap (memory store, bootstrapped like `orchestra up`). Each server runs in this process under
trio while `wrk -t1 -c8 -d5s` (a separate process) loads it over keep-alive HTTPS connections; on
a 2-core box wrk and the server share the CPUs, so absolute figures include that contention; the
"cpu µs/req" column (this process's CPU time per completed request) is the steadier comparison.
Usage: .venv/bin/python bench/http_server.py [--seconds 5] [--connections 8]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time  # process_time: the server's own CPU per request, whatever else loads the box
from pathlib import Path
from typing import Any

import trio
from hypercorn.trio import serve as hypercorn_serve

from orchestra.api.request.core import ApiCore
from orchestra.apiserver.h11server import HttpServer, server_ssl_context
from orchestra.apiserver.serve import hypercorn_config
from orchestra.apiserver.server import ApiServer
from orchestra.apiserver.tls import ServingCert, ensure_serving_cert
from orchestra.app.bootstrap import bootstrap
from orchestra.store import Store

TOKEN = "bench-token"
CONFIGMAP = "/api/v1/namespaces/default/configmaps/bench"


async def trivial_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b'{"kind":"Status","status":"Success"}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


async def api_app(nursery: trio.Nursery) -> ApiServer:
    store = Store.open_memory()
    await nursery.start(store.run)
    core = ApiCore(store)
    await bootstrap(core)
    rt = core.registry.by_kind("ConfigMap")
    assert rt is not None
    await core.create(rt, "default", {"metadata": {"name": "bench"}, "data": {"k": "v" * 200}})
    server = ApiServer(core, token=TOKEN)
    server.ready = True
    return server


async def start(kind: str, app: Any, tls: ServingCert, nursery: trio.Nursery) -> str:
    if kind == "hypercorn":
        bound = await nursery.start(hypercorn_serve, app, hypercorn_config("127.0.0.1", 0, tls))
    else:
        server = HttpServer(app, ssl_context=server_ssl_context(tls.cert, tls.key))
        bound = await nursery.start(server.serve, "127.0.0.1", 0)
    return next(b for b in bound if b.startswith("https://"))


def parse_wrk(out: str) -> dict[str, str]:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    lat = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out)
    errors = re.search(r"Socket errors: (.*)|Non-2xx or 3xx responses: (\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    return {
        "rps": rps.group(1) if rps else "?",
        "avg": lat.group(1) if lat else "?",
        "n": total.group(1) if total else "0",
        "max": lat.group(3) if lat else "?",
        "errors": (errors.group(0) if errors else ""),
    }


async def wrk(url: str, seconds: int, connections: int) -> dict[str, str]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-H", f"Authorization: Bearer {TOKEN}",
           "-H", "Accept: application/json", url]
    proc = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True)
    return parse_wrk(proc.stdout.decode())


async def main(seconds: int, connections: int) -> None:
    tls = ensure_serving_cert(Path(tempfile.mkdtemp(prefix="bench-http-")), ["127.0.0.1"])
    print(f"wrk -t1 -c{connections} -d{seconds}s, TLS, keep-alive")
    print(f"{'app':<22}{'server':<12}{'req/s':>10}{'lat avg':>10}{'lat max':>10}{'cpu µs/req':>12}  errors")
    async with trio.open_nursery() as nursery:
        apps = {"trivial ASGI": (trivial_app, "/"), "ApiServer GET cm": (await api_app(nursery), CONFIGMAP)}
        for label, (app, path) in apps.items():
            for kind in ("hypercorn", "h11server"):
                async with trio.open_nursery() as server_nursery:
                    url = await start(kind, app, tls, server_nursery)
                    await wrk(url + path, 1, connections)  # warm-up: caches, TLS sessions
                    cpu = time.process_time()
                    r = await wrk(url + path, seconds, connections)
                    cpu_us = (time.process_time() - cpu) / max(int(r["n"]), 1) * 1e6
                    print(
                        f"{label:<22}{kind:<12}{r['rps']:>10}{r['avg']:>10}{r['max']:>10}"
                        f"{cpu_us:>12.0f}  {r['errors']}",
                        flush=True,
                    )
                    server_nursery.cancel_scope.cancel()
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    trio.run(main, args.seconds, args.connections)
