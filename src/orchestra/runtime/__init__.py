"""The container runtime layer: the `Runtime` Protocol (base.py) and its implementations.

* `base` - the contract the node agent sees: specs, statuses, events, errors, `Runtime`.
* `podman` - `PodmanRuntime` on the libpod REST API (the only importer of podman-py);
  `_streams` (logs/exec/attach/events over h11 on trio) and `_convert` (pure JSON mapping) serve it.
* `service` - `PodmanService.run(task_status=)` supervises orchestra's own
  `podman system service` with the packaged containers.conf; `check_socket` for a given one.
* `simulated` - `SimulatedRuntime`, scripted and deterministic under trio's virtual clock;
  `simstdio` holds its stdin/TTY model and exec/attach sessions, `simcommand`/`simshell` the command
  rules, `simexec` the exec rule, `simrules` the per-pod annotations, `simclock` its calendar,
  `simnet` pod IPs, `simtables`/`simjournal`/`simpersist` its state on disk.
* `images` - `ensure_busybox_image()`, the offline test image (twin of scripts/build-image.sh).

Must not import: anything above the runtime layer (see ARCHITECTURE.md).
"""
