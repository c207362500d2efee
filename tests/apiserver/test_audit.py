"""The audit log (apiserver/audit/): one audit.k8s.io/v1 Event per request, batched and rotated."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio

from orchestra.api.request.core import ApiCore
from orchestra.api.user import UserInfo
from orchestra.apiserver.audit.events import AuditRecord, to_event
from orchestra.apiserver.audit.log import AuditLog
from orchestra.apiserver.requestinfo import request_info
from orchestra.apiserver.server import ApiServer
from orchestra.app.bootstrap import bootstrap
from orchestra.store import Store

TOKEN = "admin-token"


def sizes(directory: Path) -> dict[str, tuple[int, int]]:
    """name -> (size, mode) of the files in `directory`."""
    return {p.name: (p.stat().st_size, p.stat().st_mode & 0o777) for p in directory.iterdir()}


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[ApiServer, AuditLog]]:
    store = Store.open_memory()
    core = ApiCore(store)
    await bootstrap(core)
    audit = AuditLog(tmp_path / "audit.log")
    yield ApiServer(core, token=TOKEN, audit=audit), audit
    store.close()


async def call(server: ApiServer, method: str, path: str, *, token: str | None = TOKEN, query: bytes = b"",
               body: bytes = b"", audit_id: bytes = b"") -> tuple[int, dict[bytes, bytes]]:
    headers = [(b"user-agent", b"kubectl/v1.32.5"), *([(b"audit-id", audit_id)] if audit_id else [])]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": query,
             "headers": headers, "client": ("10.0.0.7", 5555), "extensions": {}}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await server(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], dict(start["headers"])


async def test_one_event_per_request_with_user_verb_object_and_code(served: tuple[ApiServer, AuditLog],
                                                                    tmp_path: Path) -> None:
    server, audit = served
    status, headers = await call(server, "GET", "/api/v1/namespaces/default/configmaps/nope")
    assert status == 404
    await call(server, "GET", "/api/v1/namespaces/default/pods", query=b"limit=500")
    await call(server, "GET", "/api/v1/pods", token="wrong")
    await call(server, "GET", "/readyz", token=None)
    await audit.flush()
    events = lines(tmp_path / "audit.log")
    assert len(events) == 4
    missing, listed, refused, health = events
    assert missing["auditID"] == headers[b"audit-id"].decode()
    assert {k: missing[k] for k in ("kind", "apiVersion", "level", "stage", "requestURI", "verb", "sourceIPs",
                                    "userAgent", "objectRef")} == {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/default/configmaps/nope", "verb": "get", "sourceIPs": ["10.0.0.7"],
        "userAgent": "kubectl/v1.32.5",
        "objectRef": {"resource": "configmaps", "namespace": "default", "name": "nope", "apiVersion": "v1"},
    }
    assert missing["user"] == {
        "username": "orchestra-admin",
        "groups": ["system:masters", "system:authenticated"],
    }
    assert missing["responseStatus"]["code"] == 404
    assert missing["responseStatus"]["reason"] == "NotFound"
    assert missing["annotations"] == {
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": "",
    }
    assert missing["requestReceivedTimestamp"] <= missing["stageTimestamp"]
    assert listed["verb"] == "list" and listed["requestURI"] == "/api/v1/namespaces/default/pods?limit=500"
    assert listed["responseStatus"] == {"metadata": {}, "code": 200}
    assert refused["stage"] == "ResponseStarted" and refused["user"] == {}
    assert refused["responseStatus"] == {"metadata": {}, "code": 401,
                                         "message": "Authentication failed, attempted: bearer"}
    # why it was refused: orchestra's annotation (kube only logs it)
    assert refused["annotations"] == {"authentication.orchestra.io/failure-reason": "invalid bearer token"}
    assert health["user"] == {"username": "system:anonymous", "groups": ["system:unauthenticated"]}


async def test_the_clients_audit_id_is_kept(served: tuple[ApiServer, AuditLog], tmp_path: Path) -> None:
    server, audit = served
    _, headers = await call(server, "GET", "/api/v1/namespaces", audit_id=b"trace-me-42")
    assert headers[b"audit-id"] == b"trace-me-42"
    await audit.flush()
    assert [e["auditID"] for e in lines(tmp_path / "audit.log")] == ["trace-me-42"]


async def test_unauthorized_is_kubes_status(served: tuple[ApiServer, AuditLog]) -> None:
    server, _ = served
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await server({"type": "http", "method": "GET", "path": "/api/v1/pods", "query_string": b"", "headers": [],
                  "client": None}, receive, send)
    assert sent[0]["status"] == 401
    assert orjson.loads(sent[1]["body"]) == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                             "status": "Failure", "message": "Unauthorized",
                                             "reason": "Unauthorized", "code": 401}


def test_a_watch_is_audited_when_it_starts_and_when_it_ends() -> None:
    got: list[tuple[Any, ...]] = []
    info = request_info("GET", "/api/v1/pods", {"watch": ["1"]})
    record = AuditRecord(got.append, info, "/api/v1/pods?watch=1", "127.0.0.1", "")
    record.user = UserInfo("jane")
    record._response_started(200)
    record.complete()
    assert [stage for _, stage, _ in got] == ["ResponseStarted", "ResponseComplete"]
    event = to_event(*got[0])
    assert event["verb"] == "watch" and event["responseStatus"] == {"metadata": {}, "code": 200}
    assert "userAgent" not in event


def _entry(i: int) -> tuple[Any, ...]:
    record = AuditRecord(lambda _: None, request_info("GET", f"/api/v1/namespaces/n/configmaps/c{i}", {}),
                         f"/api/v1/namespaces/n/configmaps/c{i}", "127.0.0.1", "x" * 200)
    record.code = 200
    return record, "ResponseComplete", 1.0


async def test_the_log_rotates_by_size_and_keeps_its_backups(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    audit = AuditLog(path, max_bytes=4000, backups=2)
    for batch in range(12):
        for i in range(5):
            audit.add(_entry(batch * 5 + i))
        await audit.flush()
    files = sizes(tmp_path)
    assert sorted(files) == ["audit.log", "audit.log.1", "audit.log.2"]
    assert all(size <= 4000 for size, _ in files.values())
    assert oct(files["audit.log"][1]) == "0o600"
    newest = lines(path)[-1]
    assert newest["objectRef"]["name"] == "c59"
    stats = audit.statistics()
    assert stats.written == 60 and stats.rotations >= 4 and stats.dropped == 0
    kept = sum(len(lines(tmp_path / name)) for name in files)
    assert kept < 60  # the oldest went with the rotation past the last backup


async def test_a_full_buffer_drops_instead_of_slowing_requests(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.log", buffer_size=10)
    for i in range(15):
        audit.add(_entry(i))
    assert audit.statistics().dropped == 5 and audit.statistics().buffered == 10


async def test_the_writer_task_flushes_in_the_background_and_on_shutdown(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    audit = AuditLog(path, flush_interval=0.05)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(audit.run)
            audit.add(_entry(1))
            while not path.exists():  # noqa: ASYNC110 - the writer thread makes the file: nothing to wait on
                await trio.sleep(0.01)
            audit.add(_entry(2))
            nursery.cancel_scope.cancel()
    assert [e["objectRef"]["name"] for e in lines(path)] == ["c1", "c2"]


@pytest.mark.parametrize("accept", [{"type": "websocket.accept"}, {"type": "orchestra.raw_upgrade.accept"}],
                         ids=["websocket", "spdy"])
async def test_an_upgraded_stream_is_audited_as_101(accept: dict[str, Any]) -> None:
    got: list[tuple[Any, ...]] = []
    info = request_info("GET", "/api/v1/namespaces/default/pods/web/exec", {})
    record = AuditRecord(got.append, info, "/api/v1/namespaces/default/pods/web/exec?command=sh", None, "")
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await record.wrap(send)(dict(accept))
    record.complete()
    assert sent == [accept]
    assert [(stage, to_event(*entry)["responseStatus"]["code"]) for entry in got for stage in [entry[1]]] == [
        ("ResponseStarted", 101), ("ResponseComplete", 101)]
    assert to_event(*got[0])["objectRef"] == {"resource": "pods", "namespace": "default", "name": "web",
                                              "apiVersion": "v1", "subresource": "exec"}
