"""The certificate controllers' wiring: the CSR approver asks the API server's authorizer, the signer
holds the cluster CA's key.

Owns: `certificate_controllers(client, state_dir, authorizer)` -> [CsrApprover, KubeletServingApprover,
CsrSigner] and
`requester_can(authorizer)`, kube's SubjectAccessReview of the approver (may the CSR's requester —
spec.username, uid, groups, extra — `create` certificatesigningrequests/<subresource>?).
Must not import: cli.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestra.api.user import UserInfo
from orchestra.apiserver.auth.authz import Authorizer, Decision
from orchestra.apiserver.requestinfo import RequestInfo
from orchestra.apiserver.tls import load_ca
from orchestra.client.base import Client
from orchestra.objects import Obj, as_dict
from orchestra.reconcilers.certificates import Can, CsrApprover, CsrSigner
from orchestra.reconcilers.csrserving import KubeletServingApprover


def requester_can(authorizer: Authorizer) -> Can:
    def can(spec: Obj, subresource: str) -> bool:
        extra = as_dict(spec.get("extra"))
        user = UserInfo(str(spec.get("username") or ""), uid=str(spec.get("uid") or ""),
                        groups=[str(g) for g in spec.get("groups") or []],
                        extra={str(k): [str(x) for x in v or []] for k, v in extra.items()})
        info = RequestInfo(path="", verb="create", resource_request=True, api_group="certificates.k8s.io",
                           api_version="v1", resource="certificatesigningrequests", subresource=subresource)
        decision, _ = authorizer.authorize(user, info)
        return decision is Decision.ALLOW

    return can


def certificate_controllers(client: Client, state_dir: Path, authorizer: Authorizer) -> list[Any]:
    ca_cert, ca_key = load_ca(state_dir)
    return [CsrApprover(client, requester_can(authorizer)), KubeletServingApprover(client),
            CsrSigner(client, ca_cert, ca_key)]
