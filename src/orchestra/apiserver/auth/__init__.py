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
                        (servers built without RBAC, in tests), `forbidden(user, info)`: kube's 403.
  * rbac.py             `cluster_authorizer(index)`: system:masters, then `RBACAuthorizer` (a Union).
  * rbacindex.py        `RbacIndex(store, decode=)`: roles and bindings in memory from the store's watch;
                        kube's rule resolution (VisitRulesFor) memoised per user and namespace.
  * escalation.py       `RbacEscalation`: the admission plugin refusing roles and bindings that grant
                        more than the writer holds (unless `escalate` / `bind`).
  * accessreviews.py    SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectAccessReview,
                        SelfSubjectRulesReview (`kubectl auth can-i [--list]`).
  * impersonation.py    Impersonate-User/-Group/-Uid/-Extra-*, gated by the `impersonate` verb.
  * reviews.py          TokenReview and SelfSubjectReview (`kubectl auth whoami`).
  * base.py             `Response`, `AuthenticationError`, the `TokenAuthenticator` protocol.
The chain itself (audit -> authenticate -> impersonate -> authorize -> handler) is apiserver/chain.py.
New code here: an authenticator (bootstrap tokens, node client certificates) as a TokenAuthenticator
or beside x509.py; an authorizer (Node) implementing `Authorizer`, added to rbac.py's union.
Must not import: reconcilers, node, net, cli, app.
"""
