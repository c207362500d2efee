"""The `orchestra` command (click) and the terminal dashboard (rich): the only code that reads argv or
keys, or prints.

Entry points: `entry.main` (the console script; installs the SIGTERM handler before the CLI's
imports begin, signals.py), `main.cli` (the click group: kubectl-like exit codes, never a
traceback). Commands: `up` (up.py: runs the cluster in this process, the server side imported
only then), `apply` (apply.py), `get` (get.py, rendering in render.py and tabwriter.py), `describe`
(describe.py: kubectl-style describers, pure functions of the objects), `delete` (delete.py),
`explain`/`why` (explain.py), `dashboard` (dashboard/), `kubeconfig` (kubeconfig.py: a user's
kubeconfig with a client certificate of the cluster CA), `version` (main.py). Heavy commands are
registered lazily by module name (main.LAZY_COMMANDS). Client commands talk HTTPS through rest.py
(a small synchronous httpx client); session.py holds the shared options (`--kubeconfig`,
`-n`), config.py where the cluster is found (and with which credentials: a token or a client
certificate), targets.py what a user typed (`po,svc`,
`deploy/web`), manifests.py manifest loading (YAML under api/request/yamlbody.py's limits),
errors.py `CliError` (a message and an exit code).

New code here: a command in a module of its own, added to main.py (to LAZY_COMMANDS when it
imports trio, httpx or rich Live); a kind's describer in describe.py; output formats in render.py.
Must not import: the server side at module level (app, apiserver, reconcilers, node, net, store,
runtime; `up` imports app inside the command), so `orchestra get` starts fast. Only cli/ imports
click and rich (import-linter).
"""
