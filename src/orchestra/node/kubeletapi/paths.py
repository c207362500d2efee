"""The kubelet API's URL layout and what each request asks to do.

Owns: `parse(method, path)` -> `KubeletRequest` (kube's kubelet paths: /containerLogs/{ns}/{pod}/{container},
/exec/{ns}/{pod}/{container}, /attach/{ns}/{pod}/{container}, /portForward/{ns}/{pod}, /pods, /healthz;
None for anything else) and the authorization attributes of a request as kubelet derives them
(pkg/kubelet/server/auth.go: the verb from the HTTP method, resource `nodes`, subresource `proxy` for
these paths, the node's name), and `stream_query`: kubelet's exec/attach query (`input`, `output`,
`error`, `tty`, as kube-apiserver sends them) in the pod subresources' terms (`stdin`, `stdout`,
`stderr`, `tty`, `container`).
Must not import: anything of orchestra.
"""

from __future__ import annotations

import attrs

# kubelet's subresource for a path prefix; every other path is `proxy` (auth.go's GetRequestAttributes)
_SUBRESOURCES = {
    "stats": "stats",
    "metrics": "metrics",
    "logs": "log",
    "spec": "spec",
    "checkpoint": "checkpoint",
}
_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
# path kind -> (the pod subresource it serves, how many segments after the kind)
_STREAMS = {
    "containerLogs": ("log", 3),
    "exec": ("exec", 3),
    "attach": ("attach", 3),
    "portForward": ("portforward", 2),
}
# kubelet's query names (core/v1 ExecStdinParam...) -> the pod subresource's
_EXEC_PARAMS = {"input": "stdin", "output": "stdout", "error": "stderr"}


@attrs.frozen
class KubeletRequest:
    kind: str  # "log" | "exec" | "attach" | "portforward" | "pods" | "healthz"
    namespace: str = ""
    pod: str = ""
    container: str = ""


@attrs.frozen
class Attributes:
    """What kubelet asks its authorizer: may `user` <verb> nodes/<subresource> named `node`?"""

    verb: str
    resource: str
    subresource: str
    name: str


def parse(path: str) -> KubeletRequest | None:
    parts = path.strip("/").split("/")
    kind = parts[0]
    if kind in ("healthz", "pods") and len(parts) == 1:
        return KubeletRequest(kind)
    if kind not in _STREAMS:
        return None
    sub, count = _STREAMS[kind]
    args = parts[1:]
    if len(args) != count or not all(args):
        return None
    return KubeletRequest(sub, args[0], args[1], args[2] if count == 3 else "")


def attributes(method: str, path: str, node: str) -> Attributes:
    """kubelet's authorization attributes of any request (paths it does not serve included)."""
    first = path.strip("/").split("/")[0]
    return Attributes(
        verb=_VERBS.get(method.upper(), method.lower()),
        resource="nodes",
        subresource=_SUBRESOURCES.get(first, "proxy"),
        name=node,
    )


def stream_query(query: dict[str, list[str]], request: KubeletRequest) -> dict[str, list[str]]:
    """The query a pod subresource reads: kubelet's exec/attach names translated, the container set."""
    out = (
        {_EXEC_PARAMS.get(k, k): list(v) for k, v in query.items()}
        if request.kind in ("exec", "attach")
        else {k: list(v) for k, v in query.items()}
    )
    if request.container:
        out["container"] = [request.container]
    return out
