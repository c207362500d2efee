"""TLS to etcd, as kube-apiserver's --etcd-cafile, --etcd-certfile and --etcd-keyfile set it up.

Owns: `client_tls(cafile, certfile, keyfile)`, the ssl.SSLContext the etcd client uses with an
`etcds://` store URL: etcd's serving certificate verified against `cafile` (the system's CAs when
none is given) and the host name it is dialled by; `certfile` + `keyfile` (PEM) the client certificate
for an etcd run with --client-cert-auth. Missing, unreadable or mismatched files are a ValueError that
names the option, before anything is dialled.
Must not import: anything from orchestra.
"""

from __future__ import annotations

import ssl
from pathlib import Path


def client_tls(cafile: str | None = None, certfile: str | None = None,
               keyfile: str | None = None) -> ssl.SSLContext:
    options = (("--etcd-cafile", cafile), ("--etcd-certfile", certfile), ("--etcd-keyfile", keyfile))
    for option, path in options:
        if path is not None and not Path(path).is_file():
            raise ValueError(f"{option} {path}: no such file")
    if (certfile is None) != (keyfile is None):
        raise ValueError("--etcd-certfile and --etcd-keyfile go together (the client certificate and "
                         "its key)")
    try:
        context = ssl.create_default_context(cafile=cafile)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"--etcd-cafile {cafile}: not a PEM CA certificate ({exc})") from None
    if certfile is not None:
        try:
            context.load_cert_chain(certfile, keyfile)
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"--etcd-certfile {certfile} / --etcd-keyfile {keyfile}: not a PEM certificate "
                             f"and its key ({exc})") from None
    return context
