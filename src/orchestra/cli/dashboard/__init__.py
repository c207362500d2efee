"""The interactive terminal dashboard (`orchestra dashboard`, and `orchestra up` on a terminal).

Modules: model (informer caches), views (list rows and drawing), detail (the describe-like pane),
controls (what keys do), input (raw keys on trio), app (the main loop), command (the click command).
Nothing is imported here, so `orchestra get` does not pay for the dashboard: import the modules.
"""
