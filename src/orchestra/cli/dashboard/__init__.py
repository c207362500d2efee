"""The interactive terminal dashboard (`orchestra dashboard`, and `orchestra up` on a terminal).

Entry points: `command.dashboard_command` (`orchestra dashboard`: attaches to a running server over
HttpClient), `app.run_dashboard(client, ...)` (the trio main loop) and `app.run_in_process(cluster)`
(`orchestra up` on a terminal, over the in-process client); `python -m orchestra.cli.dashboard`
runs it without the main CLI group.
Modules: model (informer caches, one per kind shown), views (list rows), draw (drawing them),
detail (the describe-like pane), controls (what keys do: UI state and its transitions), input (raw
keys on trio), app (the main loop), command (the click command).
Nothing is imported here, so `orchestra get` does not pay for the dashboard: import the modules.

New code here: a view's rows in views.py, a key in controls.py, a kind the dashboard watches in
model.py.
Must not import: the server side (app, apiserver, reconcilers, node, net, store, runtime); it reads
the cluster only through a client (orchestra.client) and its informers (orchestra.controller).
"""
