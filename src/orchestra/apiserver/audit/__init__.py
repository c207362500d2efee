"""apiserver.audit: the audit log, one audit.k8s.io/v1 Event per request at kube's Metadata level.

Entry points: events.py `AuditRecord` (one request's record: made by the request chain
(apiserver/chain.py) when a request arrives, told the user, the response code and the Status; gives
ResponseStarted / ResponseComplete events) and `to_event`; log.py `AuditLog(path, ...)` (the file:
buffered off the request path, written by its `run()` task in batches, rotated by size).
New code here: another audit level or backend (webhook), a policy deciding what is recorded.
Must not import: the api core, the store, reconcilers, node, net, cli, app.
"""
