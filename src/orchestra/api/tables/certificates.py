"""Row printer and columns of certificates.k8s.io/v1 CertificateSigningRequest (kube's
printCertificateSigningRequest): NAME, AGE, SIGNERNAME, REQUESTOR, REQUESTEDDURATION, CONDITION.

Owns: `CSR_COLUMNS`, `print_csr` and `csr_condition` (Denied, else Approved, else Pending; then
`,Failed` and `,Issued`).
Must not import: api/request, the store, or anything above the api layer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestra.api.tables.format import Cell, since
from orchestra.objects import Obj, as_dict, human_duration, only_dicts

CSR_COLUMNS: list[dict[str, Any]] = [
    {"name": name, "type": "string", "format": fmt, "description": desc, "priority": 0}
    for name, fmt, desc in (
        ("Name", "name", "Name must be unique within a namespace."),
        ("Age", "", "CreationTimestamp is a timestamp representing the server time when this object was "
                    "created."),
        ("SignerName", "", "signerName indicates the requested signer, and is a qualified name."),
        ("Requestor", "",
         "username contains the name of the user that created the CertificateSigningRequest."),
        ("RequestedDuration", "", "expirationSeconds is the requested duration of validity of the issued "
                                  "certificate."),
        ("Condition", "", "conditions applied to the request."),
    )
]


def csr_condition(obj: Obj) -> str:
    status = as_dict(obj.get("status"))
    kinds = {c.get("type") for c in only_dicts(status.get("conditions"))}
    text = "Denied" if "Denied" in kinds else "Approved" if "Approved" in kinds else "Pending"
    if "Failed" in kinds:
        text += ",Failed"
    if status.get("certificate"):
        text += ",Issued"
    return text


def print_csr(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec = as_dict(obj.get("metadata")), as_dict(obj.get("spec"))
    seconds = spec.get("expirationSeconds")
    return [
        str(meta.get("name", "")),
        since(meta.get("creationTimestamp"), now),
        str(spec.get("signerName") or ""),
        str(spec.get("username") or ""),
        human_duration(seconds) if isinstance(seconds, int) else "<none>",
        csr_condition(obj),
    ]
