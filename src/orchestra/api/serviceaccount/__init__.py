"""api.serviceaccount: ServiceAccount tokens, as kube's pkg/serviceaccount makes and checks them.

Entry points:
  * tokens.py  `TokenIssuer(private_key, *, issuer, audiences, clock)`: signs claims as an ES256 JWT
               (PyJWT) with kube's `kid` (the key's SHA-256), and `TokenVerifier`: checks a token's
               signature, issuer, audiences and times and hands back its claims, or raises
               `TokenInvalid` with kube's wording. `new_signing_key()`, `key_pem`, `load_key`.
  * claims.py  `bound_claims(...)` (the `kubernetes.io` private claims of a TokenRequest token: its
               namespace, service account, bound pod / secret / node, `warnafter`) and
               `legacy_claims(...)` (the token a `kubernetes.io/service-account-token` Secret holds);
               `validate_bound` / `validate_legacy`: whether the objects a token names still exist
               (uids, deletion), giving the token's `UserInfo` (`system:serviceaccount:NS:NAME`).
The constants below are shared by the ServiceAccount admission plugin (api/policy/serviceaccount.py),
the TokenRequest verb (api/request/tokenrequest.py), the apiserver's token authenticator, the
controllers that furnish namespaces (reconcilers/serviceaccounts.py) and the node agent.
New code here: a token format or claim kube adds. Where a token is accepted (HTTP) is the apiserver's;
who may ask for one, the TokenRequest verb's.
Must not import: anything above the api layer; from the api only errors and user.
"""

from __future__ import annotations

DEFAULT_NAME = "default"  # the ServiceAccount every namespace gets, and a pod's when it names none
ISSUER = "https://kubernetes.default.svc.cluster.local"  # kubeadm's --service-account-issuer
API_AUDIENCES = (ISSUER,)  # --api-audiences defaults to the issuer
LEGACY_ISSUER = "kubernetes/serviceaccount"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
ROOT_CA_KEY = "ca.crt"
ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
    "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
    "distributions of Kubernetes clusters."
)
TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"
NAME_ANNOTATION = "kubernetes.io/service-account.name"
UID_ANNOTATION = "kubernetes.io/service-account.uid"
WARN_ONLY_EXPIRATION = 60 * 60 + 7  # what the kubelet asks for; extended to a year, warned after (kube)
EXTENDED_EXPIRATION = 365 * 24 * 60 * 60
DEFAULT_EXPIRATION = 60 * 60  # TokenRequestSpec.expirationSeconds' default
MIN_EXPIRATION = 10 * 60
MAX_EXPIRATION = 2**32
LEEWAY = 60  # go-jose's DefaultLeeway: clock skew allowed on exp/nbf, and on deletions

# UserInfo.extra keys of a service account token bound to a pod / node (k8s.io/apiserver serviceaccount)
POD_NAME_KEY = "authentication.kubernetes.io/pod-name"
POD_UID_KEY = "authentication.kubernetes.io/pod-uid"
NODE_NAME_KEY = "authentication.kubernetes.io/node-name"
NODE_UID_KEY = "authentication.kubernetes.io/node-uid"
CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id"
