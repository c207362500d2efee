"""The container runtime layer: the `Runtime` Protocol (base.py) and its implementations.

* `base` - the contract the node agent sees: specs, statuses, events, errors, `Runtime`.
* `podman` - `PodmanRuntime` on the libpod REST API (the only importer of podman-py);
  `_streams` (logs/exec/attach/events over h11 on trio) and `_convert` (pure JSON mapping) serve it.
* `service` - `PodmanService.run(task_status=)` supervises orchestra's own
  `podman system service` with the packaged containers.conf; `check_socket` for a given one.
* `simulated` - `SimulatedRuntime`, scripted and deterministic under trio's virtual clock;
  `simstdio` holds its stdin/TTY model and exec/attach sessions.
* `images` - `ensure_busybox_image()`, the offline test image (twin of scripts/build-image.sh).

Also: `bridge` (PodmanRuntime.start_sandbox pins the MAC of Podman's bridge networks once a sandbox
has created the bridge), `reaper` (commands that must not outlive orchestra), `simscript` and
`simstate` (the simulated runtime's script and per-container state).

Contract points the node agent relies on (the rest is base.py's docstrings): `stats(container_ids)`
-> [ContainerStats(id, cpu_usage_nanoseconds, memory_working_set_bytes)] for the running ones
(kubectl top; node/metrics.py turns two samples into rates); exec() and attach() yield sessions
(stdin, close_stdin, resize, output, wait), and attach follows containerd's stdin/stdinOnce/TTY
semantics plus Podman 4.3's (base.AttachSession). Blocking podman-py calls run in worker threads
behind a limiter, only in the adapter.
New code here: a runtime capability goes into the Protocol (base.py) and into both runtimes, with a
contract test that runs against each (tests/runtime/).
Only podman.py imports podman-py; the apiserver and the reconcilers never import a concrete
runtime (import-linter).
Must not import: anything above the runtime layer (see ARCHITECTURE.md).
"""
