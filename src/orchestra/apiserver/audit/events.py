"""One request's audit record and the audit.k8s.io/v1 Events it becomes, at kube's Metadata level.

Owns: `AuditRecord` — made when a request arrives (auditID: the client's `Audit-ID` header, else a
new one; requestReceivedTimestamp), told the user
once authenticated, the response code as the response starts (through `wrap(send)`, which also adds
kube's `Audit-Id` response header) and the Status of a failed request; it hands its events to the
sink: `ResponseStarted` for long-running requests (watches, exec/attach/port-forward/log) and
failed authentications (as kube's WithFailedAuthenticationAudit), `ResponseComplete` for the rest
when the request ends. The hot path only keeps raw values (floats, the UserInfo, the RequestInfo);
`to_event` builds the JSON document later, in the log's writer.
Must not import: the api core, the store, reconcilers, node, net.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, MutableMapping
from typing import Any

from orchestra.api.user import UserInfo
from orchestra.apiserver.requestinfo import RequestInfo

Send = Callable[[MutableMapping[str, Any]], Any]
STARTED, COMPLETE = "ResponseStarted", "ResponseComplete"
# why a credential was refused (kube only logs it): orchestra's own annotation on a 401's record
AUTHN_REASON = "authentication.orchestra.io/failure-reason"
_RUN = uuid.uuid4().hex  # this process's part of every audit ID it makes
_SEQUENCE = itertools.count()


def new_audit_id() -> str:
    """A UUID-shaped ID unique to this request: a random part per process and a counter (a uuid4 per
    request costs several times more, and this runs on every request)."""
    return f"{_RUN[:8]}-{_RUN[8:12]}-{_RUN[12:16]}-{_RUN[16:20]}-{next(_SEQUENCE) & 0xFFFFFFFFFFFF:012x}"


class AuditRecord:
    __slots__ = ("audit_id", "authorized", "code", "forbidden", "impersonated", "info", "message", "reason",
                 "received", "request_uri", "sink", "source_ips", "started_sent", "status", "user",
                 "user_agent")

    def __init__(self, sink: Callable[[tuple[Any, ...]], None], info: RequestInfo, request_uri: str,
                 source_ip: str | None, user_agent: str, audit_id: str = "") -> None:
        """`audit_id`: the client's Audit-ID header, which kube keeps; else a new one."""
        self.sink = sink
        self.info = info
        self.request_uri = request_uri
        self.source_ips = (source_ip,) if source_ip else ()
        self.user_agent = user_agent
        self.audit_id = audit_id or new_audit_id()
        self.received = time.time()  # wall-clock: the audit log records calendar times
        self.user: UserInfo | None = None
        self.authorized = False
        self.forbidden = False
        self.impersonated: UserInfo | None = None  # the user acted as (Impersonate-User)
        self.reason = ""  # the authorizer's reason
        self.code = 0
        self.message = ""
        self.status: dict[str, Any] | None = None
        self.started_sent = False

    def wrap(self, send: Send) -> Send:
        """`send`, noting the response code when the response starts (and adding Audit-Id)."""
        audit_id = self.audit_id.encode()

        async def audited(message: MutableMapping[str, Any]) -> None:
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                message["headers"] = [*message.get("headers", ()), (b"audit-id", audit_id)]
                self._response_started(int(message["status"]))
            elif kind in ("websocket.accept", "orchestra.raw_upgrade.accept"):  # a WebSocket, or SPDY
                self._response_started(101)
            elif kind == "websocket.close" and not self.code:
                self._response_started(403)  # closing before accepting refuses the upgrade
            await send(message)

        return audited

    def _response_started(self, code: int) -> None:
        if self.code:
            return
        self.code = code
        if self.info.long_running:
            self.started_sent = True
            self.sink((self, STARTED, time.time()))  # wall-clock: audit stage timestamps are real times

    def failed_authentication(self, message: str, *, reason: str = "") -> None:
        """kube audits a refused credential once, at ResponseStarted, with how it was attempted;
        `reason` (why the authenticators refused it) is kept as an annotation, AUTHN_REASON."""
        self.message = message
        self.reason = reason
        self.code = 401
        self.started_sent = True
        self.sink((self, STARTED, time.time()))  # wall-clock: audit stage timestamps are real times

    def complete(self) -> None:
        if self.message:  # a failed authentication: already recorded
            return
        self.sink((self, COMPLETE, time.time()))  # wall-clock: as above


def _stamp(t: float) -> str:
    """RFC 3339 with microseconds, as kube's MicroTime (time.strftime: a few times quicker than datetime)."""
    seconds = int(t)
    micros = min(999_999, round((t - seconds) * 1e6))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


def to_event(record: AuditRecord, stage: str, at: float) -> dict[str, Any]:
    """The audit.k8s.io/v1 Event (Metadata level: no request or response bodies)."""
    event: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": record.audit_id,
        "stage": stage, "requestURI": record.request_uri, "verb": record.info.verb,
        "user": record.user.to_json() if record.user is not None else {},
        "sourceIPs": list(record.source_ips),
    }
    if record.impersonated is not None:
        event["impersonatedUser"] = record.impersonated.to_json()
    if record.user_agent:
        event["userAgent"] = record.user_agent
    ref = record.info.object_ref()
    if ref is not None:
        event["objectRef"] = ref
    status: dict[str, Any] = {"metadata": {}, "code": record.code or 500}
    if record.message:
        status["message"] = record.message
    elif record.status is not None:
        status.update({k: record.status[k] for k in ("status", "message", "reason", "details")
                       if k in record.status})
    event["responseStatus"] = status
    event["requestReceivedTimestamp"] = _stamp(record.received)
    event["stageTimestamp"] = _stamp(at)
    if record.authorized or record.forbidden:
        decision = "allow" if record.authorized else "forbid"
        event["annotations"] = {"authorization.k8s.io/decision": decision,
                                "authorization.k8s.io/reason": record.reason}
    elif record.message and record.reason:
        event["annotations"] = {AUTHN_REASON: record.reason}
    return event
