"""`PodmanRuntime`: the `Runtime` Protocol on Podman's libpod REST API.

Owns: every call to Podman. This is the only module that imports `podman` (podman-py).
Must not import: anything above the runtime layer.

Two paths, both over the service's unix socket (see ../shared/reference/PODMAN.md):
* request/response calls go through podman-py's `APIClient` (synchronous `requests`) in worker
  threads behind a `CapacityLimiter`, one client per thread (a `requests.Session` is not
  thread-safe). We send raw libpod JSON bodies instead of podman-py's docker-style kwargs, so
  the filter-stringification and exec-demux client bugs (§2.3 items 1, 2) cannot bite.
* streams (`logs`, `exec` and `attach` on hijacked connections for stdin/TTY, `events`) use h11
  and httpx on trio (`_streams.py`), because a thread blocked in a socket read cannot be cancelled.
  Events become `RuntimeEvent`s in `_events.py`.

Podman 4.3.1 workarounds applied here (§2.3): a Degraded pod ignores `pods/stop` (304), so
sandboxes are stopped container by container; force-remove ignores the stop timeout, so we kill
first; a failed pod create leaves a half-made pod, which we delete; no healthchecks are set.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import podman
import podman.api.uds
import podman.errors
import trio

from orchestra.runtime import _events, _streams, bridge
from orchestra.runtime._convert import (
    LABEL_STDIN_ONCE,
    container_body,
    container_status_from_inspect,
    container_status_from_list,
    error_for,
    label_filters,
    parse_time,
    pod_ip,
    sandbox_state_from_infra,
    stdio_config,
)
from orchestra.runtime.base import (
    LABEL_CONTAINER_NAME,
    LABEL_MANAGED,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    LABEL_SANDBOX_ID,
    AttachSession,
    ContainerSpec,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    ExecSession,
    ImageNotFound,
    ImagePullError,
    InvalidState,
    NotFound,
    PodSandboxSpec,
    PullPolicy,
    Runtime,
    RuntimeEvent,
    RuntimeFailure,
    RuntimeUnavailable,
    RuntimeVersion,
    SandboxStatus,
    check_attach,
    run_to_completion,
)

T = TypeVar("T")
log = logging.getLogger(__name__)


class _ClosingUDSConnection(podman.api.uds.UDSConnection):
    """podman-py's connection, but a socket whose connect fails (the service is gone or restarting) is
    closed at once; podman-py leaves it to the garbage collector (a ResourceWarning some time later)."""

    def connect(self) -> None:
        sock = podman.api.uds.UDSSocket(self.uds)
        try:
            sock.settimeout(self.timeout)
            sock.connect()
        except BaseException:
            sock.close()
            raise
        self.sock = sock


podman.api.uds.UDSConnectionPool.ConnectionCls = _ClosingUDSConnection

API_VERSION = "4.3.1"
_POD_LABELS = (LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID)


class PodmanRuntime:
    """A `Runtime` backed by a Podman service listening on `socket_path`."""

    def __init__(self, socket_path: str, *, threads: int = 16, request_timeout: float = 60.0):
        self.socket_path = socket_path
        self._limiter = trio.CapacityLimiter(threads)
        self._timeout = request_timeout
        self._local = threading.local()
        self._clients: list[podman.PodmanClient] = []
        self._clients_lock = threading.Lock()
        self._streams = _streams.LibpodStreams(socket_path, API_VERSION)
        self._events = _events.EventTranslator(self._inspect)
        # What never changes about a pod (Id, Name, Labels, Created, InfraContainerID), so starting a
        # pod does not inspect it three times; live state always comes from the infra container.
        self._static_pods: dict[str, dict[str, Any]] = {}
        self._bridges: list[str] | None = None  # host interfaces of Podman's bridge networks

    async def aclose(self) -> None:
        await self._streams.aclose()
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    # ------------------------------------------------------------------ request/response plumbing

    def _client(self) -> podman.PodmanClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = podman.PodmanClient(
                base_url=f"unix://{self.socket_path}", version=API_VERSION, timeout=self._timeout
            )
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _request_sync(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: Any,
        timeout: float | None,
    ) -> Any:
        api = self._client().api
        kwargs: dict[str, Any] = {"params": dict(params or {}), "timeout": timeout or self._timeout}
        try:
            if method == "get":
                response = api.get(path, **kwargs)
            elif method == "delete":
                response = api.delete(path, **kwargs)
            else:
                data = None if body is None else json.dumps(body)
                response = api.post(path, data=data, headers={"content-type": "application/json"}, **kwargs)
        except (podman.errors.APIError, OSError) as exc:  # no HTTP response at all
            raise RuntimeUnavailable(
                f"the Podman service on {self.socket_path} is not answering ({exc}); "
                "is `podman system service` running?"
            ) from exc
        if response.status_code >= 400:
            raise error_for(response.status_code, _error_message(response), path)
        if response.status_code in (204, 304) or not response.content:
            return None
        try:
            return response.json()
        except ValueError:  # a few endpoints answer plain text or JSON lines
            return response.text

    async def _run(self, fn: Callable[[], T]) -> T:
        return await trio.to_thread.run_sync(fn, limiter=self._limiter)

    async def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self._run(partial(self._request_sync, "get", path, params, None, None))

    async def _post(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        http_timeout: float | None = None,
    ) -> Any:
        return await self._run(partial(self._request_sync, "post", path, params, body, http_timeout))

    async def _delete(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self._run(partial(self._request_sync, "delete", path, params, None, None))

    # ------------------------------------------------------------------------------------ images

    async def version(self) -> RuntimeVersion:
        info = await self._get("/version")
        return RuntimeVersion(name="podman", version=info.get("Version", ""), api_version=API_VERSION)

    async def ensure_image(self, image: str, pull_policy: PullPolicy = PullPolicy.IF_NOT_PRESENT) -> str:
        present = await self._image_id(image)
        local_only = image.startswith("localhost/")  # never pullable; podman would try https://localhost
        if present and (pull_policy != PullPolicy.ALWAYS or local_only):
            return present
        if pull_policy == PullPolicy.NEVER:
            raise ImageNotFound(f"image {image!r} is not present and the pull policy is Never")
        try:
            result = await self._post("/images/pull", {"reference": image, "quiet": True, "policy": "always"})
        except InvalidState as exc:
            raise ImagePullError(f"pulling image {image!r} failed: {exc}") from exc
        error = _pull_error(result)
        if error is not None:
            if present:  # k8s would fail an Always pull too; say why
                raise ImagePullError(f"pulling image {image!r} failed: {error}")
            raise ImageNotFound(f"image {image!r} is not present locally and pulling it failed: {error}")
        image_id = await self._image_id(image)
        if not image_id:
            raise ImagePullError(f"pulled image {image!r} but cannot find it afterwards")
        return image_id

    async def _image_id(self, image: str) -> str:
        try:
            info = await self._get(f"/images/{image}/json")
        except NotFound:
            return ""
        return str(info["Id"])

    # --------------------------------------------------------------------------------- sandboxes

    async def create_sandbox(self, spec: PodSandboxSpec) -> str:
        labels = {
            **spec.labels,
            LABEL_MANAGED: "true",
            LABEL_POD_NAME: spec.name,
            LABEL_POD_NAMESPACE: spec.namespace,
            LABEL_POD_UID: spec.uid,
        }
        body: dict[str, Any] = {"name": spec.name, "labels": labels}
        if spec.hostname:
            body["hostname"] = spec.hostname
        ports = [p for p in spec.ports if p.host_port]
        if ports:
            body["portmappings"] = [
                {
                    "container_port": p.container_port,
                    "host_port": p.host_port,
                    "protocol": p.protocol.lower(),
                    **({"host_ip": p.host_ip} if p.host_ip else {}),
                }
                for p in ports
            ]
        if spec.dns_servers:
            body["dns_server"] = list(spec.dns_servers)
        if spec.dns_searches:
            body["dns_search"] = list(spec.dns_searches)
        if spec.dns_options:
            body["dns_option"] = list(spec.dns_options)
        if spec.hosts:
            body["hostadd"] = [f"{name}:{h.ip}" for h in spec.hosts for name in h.hostnames]
        try:
            created = await self._post("/pods/create", body=body)
        except InvalidState as exc:  # 409: name in use
            raise InvalidState(f"sandbox {spec.name!r} already exists: {exc}") from exc
        except RuntimeFailure:
            # 4.3.1 leaves a half-made pod (no infra) behind a failed create (§2.3 item 9).
            with trio.CancelScope(shield=True):
                await self._remove_pod_quietly(spec.name)
            raise
        return str(created["Id"])

    async def _remove_pod_quietly(self, name_or_id: str) -> None:
        try:
            await self._delete(f"/pods/{name_or_id}", {"force": True})
        except RuntimeFailure:  # nothing to clean up, or the service is gone: the create error wins
            pass

    async def _pod(self, sandbox_id: str) -> dict[str, Any]:
        try:
            info: dict[str, Any] = await self._get(f"/pods/{sandbox_id}/json")
        except NotFound as exc:
            raise NotFound(f"sandbox {sandbox_id} not found") from exc
        return info

    async def _pod_static(self, sandbox_id: str) -> dict[str, Any]:
        pod = self._static_pods.get(sandbox_id)
        if pod is None:
            live = await self._pod(sandbox_id)
            pod = {k: live.get(k) for k in ("Id", "Name", "Labels", "Created", "InfraContainerID")}
            self._static_pods[sandbox_id] = pod
        return pod

    async def _inspect(self, container_id: str) -> dict[str, Any]:
        try:
            info: dict[str, Any] = await self._get(f"/containers/{container_id}/json")
        except NotFound as exc:
            raise NotFound(f"container {container_id} not found") from exc
        return info

    async def start_sandbox(self, sandbox_id: str) -> None:
        pod = await self._pod_static(sandbox_id)
        # Start only the infra container (`pods/start` would also start every app container).
        await self._post(f"/containers/{pod['InfraContainerID']}/start")
        await self._pin_bridges()

    async def _pin_bridges(self) -> None:
        """netavark 1.4 lets its bridge's MAC follow the lowest port, so removing a pod can cut the
        others off the host (see bridge.py). The first sandbox on a bridge creates it; pin it then."""
        if self._bridges is None:
            try:
                nets = await self._get("/networks/json")
            except RuntimeFailure as exc:
                log.warning("could not list Podman's networks: %s", exc)
                nets = []
            self._bridges = [str(n["network_interface"]) for n in nets or ()
                             if n.get("driver") == "bridge" and n.get("network_interface")]
        for iface in self._bridges:
            bridge.pin_mac(iface)  # two sysfs reads when pinned already: no thread needed

    async def sandbox_status(self, sandbox_id: str) -> SandboxStatus:
        pod = await self._pod_static(sandbox_id)
        try:
            infra = await self._inspect(pod["InfraContainerID"])
        except NotFound:  # pod being removed under us, or gone: only a live inspect can tell
            self._static_pods.pop(sandbox_id, None)
            pod = await self._pod(sandbox_id)  # raises NotFound when the sandbox is gone
            infra = {}
        return self._sandbox_status(pod, infra)

    def _sandbox_status(self, pod: Mapping[str, Any], infra: Mapping[str, Any]) -> SandboxStatus:
        labels = dict(pod.get("Labels") or {})
        state = sandbox_state_from_infra(infra)
        return SandboxStatus(
            id=pod["Id"],
            name=pod.get("Name", ""),
            uid=labels.get(LABEL_POD_UID, ""),
            namespace=labels.get(LABEL_POD_NAMESPACE, ""),
            state=state,
            ip=pod_ip(infra) if state == "ready" else "",
            created_at=parse_time(pod.get("Created")),
            labels=labels,
        )

    async def stop_sandbox(self, sandbox_id: str, grace_period: float) -> None:
        try:
            pod = await self._pod(sandbox_id)
        except NotFound:
            return
        infra_id = pod["InfraContainerID"]
        running = [
            c["Id"] for c in pod.get("Containers") or () if c["Id"] != infra_id and c["State"] == "running"
        ]
        # Not `pods/stop`: it is a silent no-op (304) on a Degraded pod (§2.3 item 7).
        async with trio.open_nursery() as nursery:
            for container_id in running:
                nursery.start_soon(self._stop_quietly, container_id, grace_period)
        await self._stop_quietly(infra_id, 0)

    async def _stop_quietly(self, container_id: str, grace_period: float) -> None:
        try:
            await self.stop_container(container_id, grace_period)
        except NotFound:  # removed meanwhile: stopped enough
            pass

    async def remove_sandbox(self, sandbox_id: str) -> None:
        self._static_pods.pop(sandbox_id, None)
        try:
            pod = await self._pod(sandbox_id)
        except NotFound:
            return
        if any(c["State"] == "running" for c in pod.get("Containers") or ()):
            # force-remove ignores the stop timeout and waits 10 s per SIGTERM-ignoring container.
            try:
                await self._post(f"/pods/{sandbox_id}/kill", {"signal": "SIGKILL"})
            except (InvalidState, NotFound):  # everything exited meanwhile
                pass
        try:
            await self._delete(f"/pods/{sandbox_id}", {"force": True})
        except NotFound:
            pass

    async def list_sandboxes(self, labels: Mapping[str, str] | None = None) -> list[SandboxStatus]:
        filters = {"label": label_filters({**(labels or {}), LABEL_MANAGED: "true"})}
        pods = await self._get("/pods/json", {"filters": json.dumps(filters)}) or []
        result = []
        for entry in pods:
            try:
                result.append(await self.sandbox_status(entry["Id"]))
            except NotFound:  # removed between list and inspect
                continue
        return result

    # -------------------------------------------------------------------------------- containers

    async def list_containers(
        self, labels: Mapping[str, str] | None = None, sandbox_id: str | None = None
    ) -> list[ContainerStatus]:
        filters: dict[str, list[str]] = {"label": label_filters({**(labels or {}), LABEL_MANAGED: "true"})}
        if sandbox_id:
            filters["pod"] = [sandbox_id]
        entries = await self._get("/containers/json", {"all": True, "filters": json.dumps(filters)}) or []
        return [container_status_from_list(e) for e in entries if not e.get("IsInfra")]

    async def create_container(self, sandbox_id: str, spec: ContainerSpec) -> str:
        pod = await self._pod_static(sandbox_id)
        pod_labels = pod.get("Labels") or {}
        labels = {
            **spec.labels,
            **{k: pod_labels[k] for k in _POD_LABELS if k in pod_labels},
            LABEL_MANAGED: "true",
            LABEL_SANDBOX_ID: pod["Id"],
            LABEL_CONTAINER_NAME: spec.name,
            **({LABEL_STDIN_ONCE: "true"} if spec.stdin_once else {}),
        }
        body = container_body(spec, pod, labels)
        try:
            created = await self._post("/containers/create", body=body)
        except RuntimeFailure as exc:  # 4.3.1 answers 500 "image not known"
            if "image not known" in str(exc) or (isinstance(exc, NotFound) and "namespace" not in str(exc)):
                raise ImageNotFound(f"image {spec.image!r} is not present: {exc}") from exc
            raise
        return str(created["Id"])

    async def start_container(self, container_id: str) -> None:
        try:
            await self._post(f"/containers/{container_id}/start")
        except NotFound as exc:
            raise NotFound(f"container {container_id} not found") from exc

    async def stop_container(self, container_id: str, grace_period: float) -> None:
        seconds = max(0, math.ceil(grace_period))
        try:
            await self._post(
                f"/containers/{container_id}/stop", {"timeout": seconds}, http_timeout=seconds + 60
            )
        except NotFound as exc:
            raise NotFound(f"container {container_id} not found") from exc

    async def kill_container(self, container_id: str, signal: str = "SIGKILL") -> None:
        try:
            await self._post(f"/containers/{container_id}/kill", {"signal": signal})
        except NotFound as exc:
            raise NotFound(f"container {container_id} not found") from exc

    async def remove_container(self, container_id: str) -> None:
        try:
            info = await self._inspect(container_id)
        except NotFound:
            return
        if info.get("IsInfra"):
            raise InvalidState(f"{container_id} is an infra container: remove its sandbox instead")
        if info["State"].get("Running"):
            try:  # DELETE ?force=true would SIGTERM and wait the full 10 s stop timeout (§2.3 item 8)
                await self._post(f"/containers/{container_id}/kill", {"signal": "SIGKILL"})
                await self._post(f"/containers/{container_id}/wait", {"condition": "exited"})
            except (InvalidState, NotFound):  # exited or removed meanwhile
                pass
        try:
            await self._delete(f"/containers/{container_id}", {"force": True})
        except NotFound:
            pass

    async def container_status(self, container_id: str) -> ContainerStatus:
        return container_status_from_inspect(await self._inspect(container_id))

    # ----------------------------------------------------------------------------------- streams

    @asynccontextmanager
    async def logs(
        self, container_id: str, *, follow: bool = False, tail: int | None = None, timestamps: bool = False,
        since: datetime | None = None,
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        info = await self._inspect(container_id)
        tty = bool(info.get("Config", {}).get("Tty"))
        async with self._streams.logs(info["Id"], tty=tty, follow=follow, tail=tail, timestamps=timestamps,
                                      since=since) as lines:
            yield lines

    @asynccontextmanager
    async def exec(
        self, container_id: str, cmd: Sequence[str], *, stdin: bool = False, tty: bool = False
    ) -> AsyncIterator[ExecSession]:
        info = await self._inspect(container_id)
        if not info["State"].get("Running"):
            raise InvalidState(f"container {container_id} is not running")
        async with self._streams.exec(info["Id"], list(cmd), stdin=stdin, tty=tty) as session:
            yield session

    async def stats(self, container_ids: Sequence[str]) -> list[ContainerStats]:
        if not container_ids:
            return []
        # one call for all; Podman fails the whole call when one of them is not running, so then
        # ask one by one and leave out those that fail
        out = await self._stats(list(container_ids))
        if out is None:
            out = []
            for cid in container_ids:
                out += await self._stats([cid]) or []
        return out

    async def _stats(self, ids: list[str]) -> list[ContainerStats] | None:
        try:
            reply = await self._get("/containers/stats", {"stream": "false", "containers": ids})
        except (NotFound, InvalidState, RuntimeFailure):
            return None
        if not isinstance(reply, dict) or reply.get("Error") or reply.get("Stats") is None:
            return None
        return [
            ContainerStats(str(st["ContainerID"]), int(st.get("CPUNano") or 0), int(st.get("MemUsage") or 0))
            for st in reply["Stats"]
            if int(st.get("PIDs") or 0) > 0
        ]  # a stopped one comes back all zeros

    async def exec_run(self, container_id: str, cmd: Sequence[str], timeout: float) -> ExecResult:  # noqa: ASYNC109 (probe timeoutSeconds)
        return await run_to_completion(self, container_id, cmd, timeout)

    @asynccontextmanager
    async def attach(self, container_id: str, *, stdin: bool = False, stdout: bool = True,
                     stderr: bool = True, tty: bool = False) -> AsyncIterator[AttachSession]:
        info = await self._inspect(container_id)
        config = stdio_config(info)
        check_attach(container_id, running=config.running, has_stdin=config.stdin, has_tty=config.tty,
                     stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)
        async with self._streams.attach(info["Id"], config, stdin=stdin, stdout=stdout,
                                        stderr=stderr) as session:
            yield session

    @asynccontextmanager
    async def events(
        self, labels: Mapping[str, str] | None = None
    ) -> AsyncIterator[AsyncIterator[RuntimeEvent]]:
        wanted = dict(labels or {})
        async with self._streams.events({LABEL_MANAGED: "true"}) as raw:
            yield self._events.events(raw, wanted)


def _error_message(response: Any) -> str:
    try:
        body = response.json()
        return str(body.get("message") or body.get("cause") or body)
    except ValueError:  # not JSON
        return str(response.text).strip()


def _pull_error(result: Any) -> str | None:
    """The pull endpoint answers 200 with JSON lines; the last has "error" or "id"."""
    lines = result.splitlines() if isinstance(result, str) else [json.dumps(result)]
    for line in reversed(lines):
        try:
            item = json.loads(line)
        except ValueError:  # progress text
            continue
        if isinstance(item, dict) and item.get("error"):
            return str(item["error"])
        if isinstance(item, dict) and (item.get("id") or item.get("images")):
            return None
    return "no result from the pull endpoint"


def _conforms(runtime: PodmanRuntime) -> Runtime:  # mypy checks PodmanRuntime against the Protocol here
    return runtime
