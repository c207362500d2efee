"""API benchmark: GET / LIST / create requests per second over HTTP, watch delivery latency, server RSS,
and GET / create of a custom resource with a schema (a CRD with types, an enum, a default and a CEL
rule) beside the ConfigMap figures of the same run (target: custom >= 80 % of built-in), and what
authentication costs.

Runs `orchestra` (durable store, fsync=always, the `orchestra up` default) in a subprocess and loads it
from this process with keep-alive HTTPS connections in threads (Python clients: their own CPU counts
against the server on this 2-core machine), then with `wrk` (a C client, 8 connections) when it is
installed (`apt-get install wrk`). GET is measured with the admin token and with a ServiceAccount token
(a JWT from TokenRequest: signature checked once, then the cache and the account/pod lookups on every
request), which RBAC authorizes (a Role and RoleBinding the bench creates: its row says what share of
the admin rate it reaches); every request also goes to the audit log. `auth_costs()` times one
authentication in process: the admin token, a ServiceAccount JWT uncached (ES256 signature, claims,
lookups) and cached, and one authorization decision (system:masters; RBAC among 200 bindings).
The etcd run (`--store etcd`: orchestra's local etcd under the state directory, app/etcdlocal.py) adds
a row of puts/s straight into that etcd with orchestra's gateway client (orchestra.store.etcdclient),
as many concurrent writers as client threads, new keys of a created ConfigMap's stored size, measured
right after CREATE in the same run: CREATE through orchestra as a share of it (target >= 70 %); a CPU
row then says where the CPU goes (/proc's user + system time over each row, per write): etcd's and the
gateway client's per raw put, etcd's, the server's and the Python clients' per CREATE - on this 2-core
machine their sum bounds the rates, and the machine is shared, so it is the steadier figure; its
WATCH row is a create to the event at an HTTP watch, through etcd. The BOUND row turns the CPU row into the
ceiling it sets on this machine: the CREATE rate its cores allow for etcd's share of a CREATE alone (as if
the server and the clients cost no CPU), and the CPU per CREATE the 70 % target leaves them (meaningful
on a quiet machine only: other load leaves etcd's raw puts short of the cores).
Usage: .venv/bin/python bench/api.py [--seconds 5] [--get-only] [--secrets] [--store S ...]
`--secrets`: GET / LIST / create of Secrets on the durable store, stored in the clear (an
EncryptionConfiguration with only the identity provider) and then encrypted (orchestra's default
aesgcm config): the cost of encryption at rest.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time  # wall-clock: a benchmark measures real time
from pathlib import Path
from urllib.parse import urlparse

SERVER = """
import sys, trio
from pathlib import Path
from orchestra.app import ClusterConfig, run_cluster
trio.run(run_cluster, ClusterConfig(state_dir=Path(sys.argv[1]), listen_port=0, store=sys.argv[2], \
podman=False, network=False))
"""


def start_server(state: Path, store: str) -> tuple[subprocess.Popen[bytes], str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(state), store],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    global _CTX
    kc = state / "kubeconfig"
    for _ in range(600):
        if kc.exists():
            cfg = json.loads(kc.read_text())
            url, token = cfg["clusters"][0]["cluster"]["server"], cfg["users"][0]["user"]["token"]
            _CTX = ssl.create_default_context(cafile=str(state / "pki" / "ca.crt"))
            try:
                c = _conn(url, 2)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    return proc, url, token
            except OSError:
                pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


_CTX: ssl.SSLContext | None = None


def _conn(url: str, timeout: float) -> http.client.HTTPSConnection:
    """A keep-alive HTTPS connection that trusts the cluster CA (set by start_server)."""
    return http.client.HTTPSConnection(urlparse(url).netloc, timeout=timeout, context=_CTX)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes `pids` have used so far."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load(url: str, token: str, threads: int, seconds: float, make_request) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    count = [0] * threads
    lat: list[list[float]] = [[] for _ in range(threads)]
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        conn = _conn(url, 10)
        n = 0
        while time.perf_counter() < stop:
            method, path, body = make_request(i, n)
            t0 = time.perf_counter()
            conn.request(
                method,
                path,
                body=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
            )
            resp = conn.getresponse()
            resp.read()
            if resp.status >= 300:
                raise SystemExit(f"{method} {path}: {resp.status}")
            lat[i].append(time.perf_counter() - t0)
            n += 1
        count[i] = n

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.perf_counter() - t0
    return sum(count) / elapsed, [x for part in lat for x in part]


WRK_CREATE = """
counter = 0
request = function()
  counter = counter + 1
  local body = '{"metadata":{"name":"wrk-' .. tostring(math.random(1, 1000000000)) .. '-' .. counter \
.. '"},"data":{"k":"v"}}'
  return wrk.format("POST", "/api/v1/namespaces/default/configmaps", {["Content-Type"]="application/json",
    ["Authorization"]="Bearer TOKEN"}, body)
end
"""


def wrk(url: str, token: str, path: str, seconds: float, script: str | None = None) -> str:
    """req/s and latency from wrk (a C client, so the client's own CPU barely counts)."""
    cmd = [
        "wrk",
        "-t1",
        "-c8",
        f"-d{max(1, int(seconds))}s",
        "--latency",
        "-H",
        f"Authorization: Bearer {token}",
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        if script:
            f.write(script.replace("TOKEN", token))
            cmd += ["-s", f.name]
    out = subprocess.run([*cmd, url + path], capture_output=True, text=True, check=False).stdout
    Path(f.name).unlink()
    rps = next((line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")), "?")
    p50 = next((line.split()[1] for line in out.splitlines() if line.strip().startswith("50%")), "?")
    p99 = next((line.split()[1] for line in out.splitlines() if line.strip().startswith("99%")), "?")
    non2xx = next((line.strip() for line in out.splitlines() if "Non-2xx" in line), "")
    return f"{float(rps):8.0f} req/s   p50 {p50:>7}  p99 {p99:>7}  {non2xx}" if rps != "?" else out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000 if xs else float("nan")


def watch_latency(url: str, token: str, n: int = 200) -> list[float]:
    got: dict[str, float] = {}
    ready = threading.Event()
    done = threading.Event()

    def watcher() -> None:
        conn = _conn(url, 30)
        conn.request("GET", "/api/v1/namespaces/default/configmaps?watch=true&labelSelector=bench%3Dwatch",
                     headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        ready.set()
        while len(got) < n:
            line = resp.readline()
            if not line:
                break
            ev = json.loads(line)
            got[ev["object"]["metadata"]["name"]] = time.perf_counter()
        done.set()

    threading.Thread(target=watcher, daemon=True).start()
    ready.wait(10)
    time.sleep(0.2)
    conn = _conn(url, 10)
    sent: dict[str, float] = {}
    for i in range(n):
        name = f"wl-{i}"
        body = json.dumps({"metadata": {"name": name, "labels": {"bench": "watch"}}})
        sent[name] = time.perf_counter()
        conn.request("POST", "/api/v1/namespaces/default/configmaps", body=body,
                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        conn.getresponse().read()
        time.sleep(0.002)
    done.wait(30)
    return [got[k] - sent[k] for k in sent if k in got]


def auth_costs(n: int = 2000) -> None:
    """Microseconds per authentication, in process (no HTTP): what the request chain adds."""
    import trio

    from orchestra.api.request.core import ApiCore
    from orchestra.api.request.tokenrequest import create_token
    from orchestra.api.serviceaccount.tokens import TokenIssuer, new_signing_key
    from orchestra.apiserver.auth.authn import AdminToken, RequestAuthenticator
    from orchestra.apiserver.auth.serviceaccounts import ServiceAccountTokens, StoreLookup
    from orchestra.app.bootstrap import bootstrap
    from orchestra.store import Store

    async def go() -> None:
        store = Store.open_memory()
        issuer = TokenIssuer(new_signing_key())
        core = ApiCore(store, tokens=issuer)
        await bootstrap(core)
        tokens = [(await create_token(core, "default", "default", {}))[0]["status"]["token"]
                  for _ in range(n)]
        admin = "a" * 43
        auth = RequestAuthenticator([AdminToken(admin, issuer.audiences),
                                     ServiceAccountTokens(issuer.verifier(), StoreLookup(core))],
                                    api_audiences=issuer.audiences)

        def timed(fn, items) -> float:  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            for item in items:
                fn(item)
            return (time.perf_counter() - t0) / len(items) * 1e6

        bearer = lambda t: {"authorization": f"Bearer {t}"}  # noqa: E731
        admin_us = timed(lambda t: auth.authenticate(bearer(t), None), [admin] * n)
        uncached = timed(lambda t: auth.authenticate(bearer(t), None), tokens)
        cached = timed(lambda t: auth.authenticate(bearer(t), None), [tokens[0]] * n)
        print(f"AUTH   admin token {admin_us:6.1f} us   ServiceAccount JWT uncached {uncached:6.1f} us   "
              f"cached {cached:6.1f} us   (per request, in process)")
        await _authz_costs(core, auth.authenticate(bearer(tokens[0]), None), n)
        store.close()

    trio.run(go)


def _rbac_rows(url: str, admin: str, robot: str, args: argparse.Namespace) -> None:
    """GET as the admin (system:masters) and as a ServiceAccount RBAC authorizes, alternately, three
    rounds each (this machine is shared: the best round of each is compared)."""
    best: dict[str, tuple[float, list[float]]] = {}
    for _ in range(3):
        for who, token in (("admin", admin), ("rbac", robot)):
            rps, lat = load(url, token, args.threads, args.seconds / 2, lambda i, n: (
                "GET", f"/api/v1/namespaces/default/configmaps/seed-{n % 100}", None))
            if rps > best.get(who, (0.0, []))[0]:
                best[who] = (rps, lat)
    for who, label in (("admin", "admin token, system:masters"), ("rbac", "ServiceAccount token, RBAC")):
        rps, lat = best[who]
        share = f"; {rps / best['admin'][0]:.0%} of admin, target >= 90 %" if who == "rbac" else ""
        print(f"GET    {rps:8.0f} req/s   p50 {pct(lat, 0.5):6.2f} ms  p99 {pct(lat, 0.99):6.2f} ms   "
              f"({label}, best of 3{share})")


def _grant_reader(url: str, token: str) -> None:
    """The default ServiceAccount may read configmaps in its namespace (a Role and a RoleBinding)."""
    conn = _conn(url, 10)
    rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/default"
    role = {"metadata": {"name": "bench-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}
    binding = {"metadata": {"name": "bench-reader"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "bench-reader"},
               "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}]}
    for path, body in ((f"{rbac}/roles", role), (f"{rbac}/rolebindings", binding)):
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        conn.getresponse().read()


async def _authz_costs(core, robot, n: int) -> None:  # type: ignore[no-untyped-def]
    """Microseconds per authorization decision, in process: system:masters, and RBAC for a
    ServiceAccount bound by a RoleBinding among 200 other bindings."""
    from orchestra.apiserver.auth.authn import ADMIN_USER
    from orchestra.apiserver.auth.rbac import cluster_authorizer
    from orchestra.apiserver.auth.rbacindex import RbacIndex
    from orchestra.apiserver.requestinfo import request_info
    from orchestra.app.rbacpolicy import ensure_bootstrap_policy

    index = RbacIndex(core.store, decode=core.codec.decode)
    authorizer = cluster_authorizer(index)
    await ensure_bootstrap_policy(core)
    role, binding = core.registry.by_kind("Role"), core.registry.by_kind("RoleBinding")
    await core.create(role, "default", {"metadata": {"name": "reader"}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]})
    for i in range(200):
        subject = {"kind": "User", "name": f"user-{i}"} if i else {"kind": "ServiceAccount",
                                                                   "name": "default"}
        ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}
        await core.create(binding, "default", {"metadata": {"name": f"b{i}"}, "subjects": [subject],
                                               "roleRef": ref})
    info = request_info("GET", "/api/v1/namespaces/default/configmaps/x", {})
    for who, user in (("system:masters", ADMIN_USER), ("RBAC RoleBinding", robot)):
        t0 = time.perf_counter()
        for _ in range(n):
            authorizer.authorize(user, info)
        print(f"AUTHZ  {who:16s} {(time.perf_counter() - t0) / n * 1e6:6.1f} us per decision (in process)")


def sa_token(url: str, token: str) -> str | None:
    """A ServiceAccount token from TokenRequest (None on a server without it)."""
    conn = _conn(url, 10)
    conn.request("POST", "/api/v1/namespaces/default/serviceaccounts/default/token", body=b"{}",
                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    resp = conn.getresponse()
    body = resp.read()
    return json.loads(body)["status"]["token"] if resp.status == 201 else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--get-only", action="store_true", help="only GET (admin and ServiceAccount token)")
    ap.add_argument("--secrets", action="store_true", help="Secrets in the clear vs encrypted at rest")
    ap.add_argument("--store", action="append", choices=STORES, help="only these stores (repeatable)")
    args = ap.parse_args()
    if args.secrets:
        secrets_main(args.threads, args.seconds)
        return
    if not args.get_only:
        auth_costs()
    for store in args.store or STORES:
        with tempfile.TemporaryDirectory() as d:
            proc, url, token = start_server(Path(d), store)
            try:
                print(
                    f"== store={store} (server pid {proc.pid}; "
                    f"{args.threads} client threads, {args.seconds:.0f}s each)"
                )
                # seed: 100 configmaps to GET and LIST
                _seed(url, token, 100)
                rps, lat = load(
                    url,
                    token,
                    args.threads,
                    args.seconds,
                    lambda i, n: ("GET", f"/api/v1/namespaces/default/configmaps/seed-{n % 100}", None),
                )
                print(
                    f"GET    {rps:8.0f} req/s   p50 {pct(lat, 0.5):6.2f} ms  p99 {pct(lat, 0.99):6.2f} ms"
                    "   (target >= 2000/s)"
                )
                get_rps = rps
                robot = sa_token(url, token)
                if robot is not None:
                    _grant_reader(url, token)
                    _rbac_rows(url, token, robot, args)
                if args.get_only:
                    continue
                rps, lat = load(url, token, args.threads, args.seconds,
                                lambda i, n: ("GET", "/api/v1/namespaces/default/configmaps?limit=500", None))
                print(
                    f"LIST   {rps:8.0f} req/s   p50 {pct(lat, 0.5):6.2f} ms  p99 {pct(lat, 0.99):6.2f} ms"
                    "   (100 objects each)"
                )
                if shutil.which("wrk"):
                    print(
                        "wrk GET    "
                        f"{wrk(url, token, '/api/v1/namespaces/default/configmaps/seed-1', args.seconds)}"
                    )
                    print(
                        "wrk LIST   "
                        f"{wrk(url, token, '/api/v1/namespaces/default/configmaps?limit=500', args.seconds)}"
                        "   (100 objects each)"
                    )
                cpu = (cpu_seconds([proc.pid]), cpu_seconds(etcd_pids(Path(d))), time.process_time())
                started = time.perf_counter()
                rps, lat = load(
                    url,
                    token,
                    args.threads,
                    args.seconds,
                    lambda i, n: (
                        "POST",
                        "/api/v1/namespaces/default/configmaps",
                        json.dumps({"metadata": {"name": f"c-{i}-{n}"}, "data": {"k": "v"}}),
                    ),
                )
                creates = rps * (time.perf_counter() - started)
                now = (cpu_seconds([proc.pid]), cpu_seconds(etcd_pids(Path(d))), time.process_time())
                create_cpu = [(done - before) / creates * 1000 for before, done in zip(cpu, now, strict=True)]
                print(
                    f"CREATE {rps:8.0f} req/s   p50 {pct(lat, 0.5):6.2f} ms  p99 {pct(lat, 0.99):6.2f} ms"
                    "   (target >= 500/s)"
                )
                if store == "etcd":
                    etcd_row(Path(d), args, rps, create_cpu)
                custom_rows(url, token, args, get_rps, rps)
                if shutil.which("wrk"):
                    print(f"wrk CREATE {wrk(url, token, '', args.seconds, WRK_CREATE)}")
                wl = watch_latency(url, token)
                print(
                    f"WATCH  delivery p50 {pct(wl, 0.5):6.2f} ms  p99 {pct(wl, 0.99):6.2f} ms  "
                    f"({len(wl)} events, create ack -> event read)"
                )
                etcd_rss = "".join(f" + {rss_mb(pid):.1f} MB etcd" for pid in etcd_pids(Path(d)))
                print(f"RSS    {rss_mb(proc.pid):8.1f} MB (server process{etcd_rss})")
            finally:
                proc.kill()
                proc.wait()


STORES = ("durable", "memory", "etcd")


def etcd_row(state: Path, args: argparse.Namespace, create_rps: float, create_cpu: list[float]) -> None:
    """Puts/s straight into the server's local etcd (orchestra's gateway client, `args.threads`
    concurrent writers, new keys of a created ConfigMap's stored size), and CREATE's share of it; then
    the CPU milliseconds each costs, by process: etcd and the gateway client per raw put, and per
    CREATE (`create_cpu`, measured around the CREATE row) the server, etcd and the Python clients."""
    import trio

    from orchestra.store.etcdclient import EtcdClient

    port = json.loads((state / "etcd" / "ports.json").read_text())["client"]
    latencies: list[float] = []
    etcd = etcd_pids(state)
    put_cpu: list[float] = []

    async def go() -> float:
        client = EtcdClient([f"http://127.0.0.1:{port}"])
        stored, _ = await client.get("/registry/configmaps/default/c-0-0")
        value = b"x" * (len(stored.value) if stored else 300)
        done = 0

        async def writer(i: int) -> None:
            nonlocal done
            n = 0
            while True:
                t0 = time.perf_counter()
                await client.put(f"/bench-raw/configmaps/c-{i}-{n}", value)
                latencies.append(time.perf_counter() - t0)
                done, n = done + 1, n + 1

        async with trio.open_nursery() as nursery:
            for i in range(args.threads):
                nursery.start_soon(writer, i)
            cpu = (cpu_seconds(etcd), time.process_time())
            t0 = time.perf_counter()
            await trio.sleep(args.seconds)
            elapsed = time.perf_counter() - t0
            nursery.cancel_scope.cancel()
        put_cpu.extend((after - before) / done * 1000 for before, after in zip(
            cpu, (cpu_seconds(etcd), time.process_time()), strict=True))
        await client.aclose()
        return done / elapsed

    rps = trio.run(go)
    print(f"ETCD   {rps:8.0f} puts/s p50 {pct(latencies, 0.5):6.2f} ms  p99 {pct(latencies, 0.99):6.2f} ms   "
          f"(raw etcd, {args.threads} writers; CREATE through orchestra is {create_rps / rps:.0%} of it, "
          "target >= 70 %)")
    server, etcd_create, clients = create_cpu
    print(f"CPU    ms per raw put: etcd {put_cpu[0]:.2f}, gateway client {put_cpu[1]:.2f};   "
          f"per CREATE: etcd {etcd_create:.2f}, server {server:.2f}, Python clients {clients:.2f}")
    # The machine's cores bound CREATE's rate at cores / (CPU per CREATE): etcd's own work for a CREATE (a
    # txn and the watch event that feeds the cache) alone bounds it, however little the server and the
    # clients spend; and the 70 % target leaves them what is left of cores / (0.7 x raw puts/s).
    cores = os.cpu_count() or 1
    ceiling = cores / etcd_create * 1000
    budget = cores / (0.70 * rps) * 1000 - etcd_create
    print(f"BOUND  {cores} cores: etcd's CPU alone caps CREATE at {ceiling:.0f}/s "
          f"({ceiling / rps:.0%} of raw puts) with a server and clients costing nothing; 70 % leaves them "
          f"{budget:.2f} ms per CREATE (they spend {server + clients:.2f})")


def etcd_pids(state: Path) -> list[int]:
    """The local etcd of the server on `state` (none on the other stores)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:  # exited meanwhile
            continue
        if argv and argv[0].endswith(b"/etcd") and str(state / "etcd" / "data").encode() in argv:
            pids.append(int(entry.name))
    return pids


BENCH_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.bench.example.com"},
    "spec": {
        "group": "bench.example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["color"],
                                "x-kubernetes-validations": [{"rule": "self.replicas <= 100"}],
                                "properties": {
                                    "color": {"type": "string", "enum": ["red", "blue"]},
                                    "replicas": {"type": "integer", "minimum": 0, "default": 1},
                                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                    "note": {"type": "string", "maxLength": 200},
                                },
                            },
                            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
                        },
                    }
                },
            }
        ],
    },
}
CR_PATH = "/apis/bench.example.com/v1/namespaces/default/widgets"


def _widget(name: str) -> str:
    return json.dumps({"apiVersion": "bench.example.com/v1", "kind": "Widget", "metadata": {"name": name},
                       "spec": {"color": "red", "labels": {"k": "v"}, "note": "v" * 100}})


def custom_rows(url: str, token: str, args: argparse.Namespace, cm_get: float, cm_create: float) -> None:
    """GET and create of a custom resource with a schema, as a share of the ConfigMap figures above."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conn = _conn(url, 10)
    conn.request(
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        body=json.dumps(BENCH_CRD),
        headers=headers,
    )
    conn.getresponse().read()
    for _ in range(200):  # until the CRD controller has established it
        conn.request("GET", "/apis/bench.example.com/v1", headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status == 200:
            break
        time.sleep(0.05)
    for i in range(100):
        conn.request("POST", CR_PATH, body=_widget(f"seed-{i}"), headers=headers)
        conn.getresponse().read()
    rps, lat = load(
        url, token, args.threads, args.seconds, lambda i, n: ("GET", f"{CR_PATH}/seed-{n % 100}", None)
    )
    print(f"CR GET {rps:8.0f} req/s   p50 {pct(lat, 0.5):6.2f} ms  p99 {pct(lat, 0.99):6.2f} ms   "
          f"({100 * rps / cm_get:3.0f} % of ConfigMap GET; target >= 80 %)")
    rps, lat = load(
        url, token, args.threads, args.seconds, lambda i, n: ("POST", CR_PATH, _widget(f"w-{i}-{n}"))
    )
    print(f"CR NEW {rps:8.0f} req/s   p50 {pct(lat, 0.5):6.2f} ms  p99 {pct(lat, 0.99):6.2f} ms   "
          f"({100 * rps / cm_create:3.0f} % of ConfigMap CREATE; target >= 80 %)")


IDENTITY_ONLY = {"kind": "EncryptionConfiguration", "apiVersion": "apiserver.config.k8s.io/v1",
                 "resources": [{"resources": ["secrets"], "providers": [{"identity": {}}]}]}


def secrets_main(threads: int, seconds: float) -> None:
    path = "/api/v1/namespaces/default/secrets"
    runs = [
        ("GET   ", lambda i, n: ("GET", f"{path}/seed-{n % 100}", None)),
        ("LIST  ", lambda i, n: ("GET", f"{path}?limit=500", None)),
        ("CREATE", lambda i, n: ("POST", path, json.dumps({"metadata": {"name": f"s-{i}-{n}"},
                                                           "data": {"k": "dmFsdWVz" * 12}}))),
    ]
    for mode in ("identity", "aesgcm"):
        with tempfile.TemporaryDirectory() as d:
            if mode == "identity":  # written before the first start, so orchestra does not make a key
                (Path(d) / "encryption-config.json").write_text(json.dumps(IDENTITY_ONLY))
            proc, url, token = start_server(Path(d), "durable")
            try:
                print(f"== Secrets, {mode} ({threads} client threads, {seconds:.0f}s each)")
                _seed(url, token, 100, "secrets")
                for label, make in runs:
                    rps, lat = load(url, token, threads, seconds, make)
                    print(f"{label} {rps:8.0f} req/s   p50 {pct(lat, 0.5):6.2f} ms  "
                          f"p99 {pct(lat, 0.99):6.2f} ms")
            finally:
                proc.kill()
                proc.wait()


def _seed(url: str, token: str, n: int, resource: str = "configmaps") -> None:
    value = "v" * 100 if resource == "configmaps" else "dmFsdWVz" * 12  # a Secret's data is base64
    conn = _conn(url, 10)
    for i in range(n):
        conn.request(
            "POST",
            f"/api/v1/namespaces/default/{resource}",
            body=json.dumps({"metadata": {"name": f"seed-{i}"}, "data": {"k": value}}),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        r = conn.getresponse()
        r.read()


if __name__ == "__main__":
    main()
