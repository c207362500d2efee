"""apiserver.auth: who is asking (authentication) and may they (authorization), kube's filter order.

Entry points:
  * authn.py            `RequestAuthenticator(tokens, certificates=, api_audiences=)`: the client
                        certificate first, then the bearer token through each TokenAuthenticator; the
                        user gets `system:authenticated`; `AdminToken` (the state directory's token:
                        `orchestra-admin` in `system:masters`); `attempted()` for the audit log.
  * x509.py             `ClientCertificates(ca)`: CN = user, O = groups, issued by the cluster CA.
  * serviceaccounts.py  `ServiceAccountTokens(verifier, lookup)`: TokenRequest and legacy Secret
                        tokens, cached; `StoreLookup(core)` reads the objects a token names.
  * authz.py            the seam after authentication: `Authorizer`, `Decision`, `AlwaysAllow`
                        (temporary: every authenticated user may do everything until RBAC comes),
                        `forbidden(user, info)`: kube's 403.
  * reviews.py          TokenReview and SelfSubjectReview (`kubectl auth whoami`).
  * base.py             `Response`, `AuthenticationError`, the `TokenAuthenticator` protocol.
The chain itself (audit -> authenticate -> authorize -> handler) is apiserver/chain.py.
New code here: an authenticator (bootstrap tokens, node client certificates) as a TokenAuthenticator
or beside x509.py; an authorizer (RBAC, Node) implementing `Authorizer`.
Must not import: reconcilers, node, net, cli, app.
"""
