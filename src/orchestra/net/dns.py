"""Cluster DNS: `<svc>.<ns>.svc.cluster.local` and friends, served from Service/EndpointSlice caches.

Owns: the record table built from informers and a UDP+TCP DNS server on trio (dnspython does the
wire format). Records, as CoreDNS's kubernetes plugin answers them:
- `<svc>.<ns>.svc.<domain>` A: the ClusterIP; for headless Services, every ready endpoint address.
- `<hostname>.<svc>.<ns>.svc.<domain>` A: headless endpoints that carry a hostname (StatefulSets).
- `_<port>._<proto>.<svc>.<ns>.svc.<domain>` SRV for named ports.
- ExternalName Services: CNAME to spec.externalName.
- `<a-b-c-d>.<ns>.pod.<domain>` A: the dashed pod IP.
Names outside the cluster domain are forwarded to the host's resolvers (from /etc/resolv.conf).
A query whose records cannot be built (a stored object the resolver cannot digest) gets SERVFAIL
and is logged and counted (`errors`); other queries are unaffected. `run()` may be called again after
it raised (a supervisor restarting it).
Must not import: apiserver, cli, runtime, node.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import trio

from orchestra.client.base import Client
from orchestra.controller.informer import Informer
from orchestra.net.common import kind, slice_service_key
from orchestra.objects import Obj

BIND_ATTEMPTS = 5  # port 0: UDP ports the kernel picks until TCP has the same one free

log = logging.getLogger("orchestra.net.dns")

TTL = 5
UPSTREAM_TIMEOUT = 2.0


@attrs.define
class RecordTable:
    """Name → answers, rebuilt for a Service whenever it or its EndpointSlices change."""

    a: dict[str, list[str]] = attrs.field(factory=dict)
    cname: dict[str, str] = attrs.field(factory=dict)
    srv: dict[str, list[tuple[int, str]]] = attrs.field(factory=dict)  # (port, target)


def _fqdn(*labels: str) -> str:
    return ".".join(label.strip(".").lower() for label in labels if label) + "."


def service_records(svc: Obj, slices: Iterable[Obj], domain: str) -> RecordTable:
    m, spec = svc.get("metadata") or {}, svc.get("spec") or {}
    base = _fqdn(m.get("name", ""), m.get("namespace", ""), "svc", domain)
    table = RecordTable()
    stype = spec.get("type", "ClusterIP")
    if stype == "ExternalName":
        table.cname[base] = _fqdn(spec.get("externalName", ""))
        return table
    headless = spec.get("clusterIP") in (None, "", "None")
    ready: list[tuple[str, str | None]] = []  # (ip, hostname)
    for sl in slices:
        for ep in sl.get("endpoints") or []:
            cond = ep.get("conditions") or {}
            if cond.get("ready") is False and not spec.get("publishNotReadyAddresses"):
                continue
            for ip in ep.get("addresses") or []:
                ready.append((ip, ep.get("hostname")))
    if headless:
        table.a[base] = sorted({ip for ip, _ in ready})
        for ip, host in ready:
            if host:
                table.a.setdefault(_fqdn(host, base), []).append(ip)
    elif spec.get("clusterIP"):
        table.a[base] = [spec["clusterIP"]]
    for port in spec.get("ports") or []:
        if not port.get("name"):
            continue
        srv_name = _fqdn(f"_{port['name']}", f"_{str(port.get('protocol', 'TCP')).lower()}", base)
        if headless:
            targets = [(int(port["port"]), _fqdn(host, base)) for _, host in ready if host]
            table.srv[srv_name] = targets or [(int(port["port"]), base)]
        else:
            table.srv[srv_name] = [(int(port["port"]), base)]
    return table


def host_upstreams(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[str]:
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            out.append(parts[1])
    return out


class ClusterDNS:
    def __init__(self, client: Client, *, host: str, port: int = 53, domain: str = "cluster.local",
                 upstreams: list[str] | None = None) -> None:
        self.client = client
        self.host, self.port = host, port
        self.domain = domain.strip(".")
        self.upstreams = upstreams if upstreams is not None else host_upstreams()
        self.services = Informer(client, kind("Service"))
        self.slices = Informer(client, kind("EndpointSlice"),
                               indexers={"service": slice_service_key})
        self._by_service: dict[str, RecordTable] = {}
        self.queries = 0
        self.errors = 0
        self.bound_port = port
        self.services.add_handler(self._on_service)  # once: run() may run again on the same informers
        self.slices.add_handler(self._on_slice)

    # --- records -----------------------------------------------------------------------------

    def _refresh(self, key: str) -> None:
        ns, _, name = key.partition("/")
        svc = self.services.get(ns, name)
        if svc is None:
            self._by_service.pop(key, None)
            return
        self._by_service[key] = service_records(svc, self.slices.by_index("service", key), self.domain)

    def _on_service(self, _t: str, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj:
            m = obj["metadata"]
            self._refresh(f"{m.get('namespace')}/{m['name']}")

    def _on_slice(self, _t: str, old: Obj | None, new: Obj | None) -> None:
        for obj in (old, new):
            for key in slice_service_key(obj) if obj else ():
                self._refresh(key)

    def lookup(self, qname: str, qtype: int) -> tuple[dns.rcode.Rcode, list[dns.rrset.RRset]]:
        """(rcode, answers) for a name in the cluster domain."""
        name = qname.lower()
        answers: list[dns.rrset.RRset] = []
        for table in self._by_service.values():
            if name in table.cname:
                answers.append(dns.rrset.from_text(name, TTL, "IN", "CNAME", table.cname[name]))
                return dns.rcode.NOERROR, answers
            if name in table.a:
                if qtype in (dns.rdatatype.A, dns.rdatatype.ANY):
                    ips = [ip for ip in table.a[name] if ipaddress.ip_address(ip).version == 4]
                    if ips:
                        answers.append(dns.rrset.from_text_list(name, TTL, "IN", "A", ips))
                return dns.rcode.NOERROR, answers
            if name in table.srv:
                if qtype in (dns.rdatatype.SRV, dns.rdatatype.ANY):
                    rd = [
                        f"0 {100 // max(1, len(table.srv[name]))} {port} {target}"
                        for port, target in table.srv[name]
                    ]
                    answers.append(dns.rrset.from_text_list(name, TTL, "IN", "SRV", rd))
                return dns.rcode.NOERROR, answers
        pod = self._pod_record(name)
        if pod:
            if qtype in (dns.rdatatype.A, dns.rdatatype.ANY):
                answers.append(dns.rrset.from_text(name, TTL, "IN", "A", pod))
            return dns.rcode.NOERROR, answers
        if self._is_known_zone(name):
            return dns.rcode.NOERROR, answers  # an existing parent name: NODATA, like CoreDNS
        return dns.rcode.NXDOMAIN, answers

    def _pod_record(self, name: str) -> str | None:
        suffix = f".pod.{self.domain}."
        if not name.endswith(suffix):
            return None
        first = name[: -len(suffix)].split(".")[0]
        try:
            return str(ipaddress.IPv4Address(first.replace("-", ".")))
        except ValueError:
            return None

    def _is_known_zone(self, name: str) -> bool:
        return name in (f"{self.domain}.", f"svc.{self.domain}.", f"pod.{self.domain}.") or any(
            n.endswith("." + name) for t in self._by_service.values() for n in t.a)

    def in_cluster(self, qname: str) -> bool:
        return qname.lower().rstrip(".").endswith(self.domain)

    # --- serving -----------------------------------------------------------------------------

    async def answer(self, wire: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None  # not a DNS message: drop it, like any resolver
        self.queries += 1
        if not query.question:
            resp = dns.message.make_response(query)
            resp.set_rcode(dns.rcode.FORMERR)
            return resp.to_wire()
        q = query.question[0]
        qname = q.name.to_text()
        if not self.in_cluster(qname):
            forwarded = await self._forward(wire)
            if forwarded is not None:
                return forwarded
            resp = dns.message.make_response(query)
            resp.set_rcode(dns.rcode.SERVFAIL)
            return resp.to_wire()
        try:
            rcode, answers = self.lookup(qname, q.rdtype)
        except Exception:  # records built from a bad stored object: this query fails, the server does not
            self.errors += 1
            log.exception("cluster DNS: answering %s failed", qname)
            rcode, answers = dns.rcode.SERVFAIL, []
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.AA | dns.flags.RA
        resp.set_rcode(rcode)
        resp.answer.extend(answers)
        return resp.to_wire()

    async def _forward(self, wire: bytes) -> bytes | None:
        for upstream in self.upstreams:
            try:
                sock = trio.socket.socket(
                    trio.socket.AF_INET6 if ":" in upstream else trio.socket.AF_INET, trio.socket.SOCK_DGRAM
                )
            except OSError:
                continue
            with sock, trio.move_on_after(UPSTREAM_TIMEOUT):
                try:
                    await sock.sendto(wire, (upstream, 53))
                    data, _ = await sock.recvfrom(65535)
                    return data
                except OSError:
                    continue
        return None

    async def _serve_udp(self, sock: trio.socket.SocketType) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                data, addr = await sock.recvfrom(65535)
                nursery.start_soon(self._reply_udp, sock, data, addr)

    async def _reply_udp(self, sock: trio.socket.SocketType, data: bytes, addr: Any) -> None:
        resp = await self.answer(data)
        if resp is not None:
            try:
                await sock.sendto(resp, addr)
            except OSError:
                pass  # the client is gone; UDP has nobody to tell

    async def _serve_tcp_conn(self, stream: trio.SocketStream) -> None:
        async with stream:
            buf = b""
            while True:
                with trio.move_on_after(10):
                    chunk = await stream.receive_some(65535)
                if not chunk:
                    return
                buf += chunk
                while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
                    n = int.from_bytes(buf[:2], "big")
                    msg, buf = buf[2 : 2 + n], buf[2 + n :]
                    resp = await self.answer(msg)
                    if resp is not None:
                        await stream.send_all(len(resp).to_bytes(2, "big") + resp)

    async def _bind(self) -> tuple[trio.socket.SocketType, list[trio.SocketListener]]:
        """The UDP socket and the TCP listeners on one port: `self.port`, or with port 0 one the
        kernel picks for UDP - which TCP may already use (another process's connection): then another
        pick, a few times."""
        family = trio.socket.AF_INET6 if ":" in self.host else trio.socket.AF_INET
        for attempt in range(BIND_ATTEMPTS):
            udp = trio.socket.socket(family, trio.socket.SOCK_DGRAM)
            try:
                await udp.bind((self.host, self.port))
                return udp, await trio.open_tcp_listeners(udp.getsockname()[1], host=self.host)
            except BaseException as exc:
                udp.close()
                taken = isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE
                if self.port or not taken or attempt == BIND_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; `started()` reports the bound UDP/TCP port once both listen."""
        udp, listeners = await self._bind()
        with udp:
            port = udp.getsockname()[1]
            async with trio.open_nursery() as nursery:
                await nursery.start(self.services.run)
                await nursery.start(self.slices.run)
                self.bound_port = port
                nursery.start_soon(self._serve_udp, udp)
                nursery.start_soon(trio.serve_listeners, self._serve_tcp_conn, listeners)
                log.info("cluster DNS on %s:%d (domain %s)", self.host, port, self.domain)
                task_status.started(port)


