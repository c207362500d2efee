"""api.policy.rbac: what RBAC objects mean, as pure functions of their documents.

Owns: rules.py (PolicyRule matching, covering, kube's compact wording), bootstrap.py (kube 1.32's
bootstrap ClusterRoles and ClusterRoleBindings), reconcile.py (kube's reconciliation of a stored
role or binding with the wanted one: `kubectl auth reconcile` and the start-up reconciliation) and
aggregation.py (the rules an aggregationRule gathers). The authorizer that uses them is the
apiserver's (apiserver/auth/rbac.py); the aggregation controller is reconcilers/clusterroleaggregation.py.
Must not import: api/request, api/tables or anything above the api layer.
"""
