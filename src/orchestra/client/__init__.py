"""Clients of the API with one interface: `base.Client`; `local.LocalClient` (in-process, over the API
core) and `http.HttpClient` (over HTTPS). Import the one you need from its module (the package itself
imports nothing, so a light client does not load the API core)."""
