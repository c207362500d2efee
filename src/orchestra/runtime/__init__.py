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

Also: `bridge` (PodmanRuntime.start_sandbox pins the MAC of Podman's bridge networks once a sandbox
has created the bridge), `reaper` (commands that must not outlive orchestra), `cgroupmounts` (the
host's cgroup mounts again for a node started with `ip netns exec`, which hides them), `simscript` and
`simstate` (the simulated runtime's script and per-container state).

Contract points the node agent relies on (the rest is base.py's docstrings): `stats(container_ids)`
-> [ContainerStats(id, cpu_usage_nanoseconds, memory_working_set_bytes)] for the running ones
(kubectl top; node/metrics.py turns two samples into rates); exec() and attach() yield sessions
(stdin, close_stdin, resize, output, wait), and attach follows containerd's stdin/stdinOnce/TTY
semantics plus Podman 4.3's (base.AttachSession). Blocking podman-py calls run in worker threads
behind a limiter, only in the adapter.
SimulatedRuntime(script, *, clock=SimClock(), state_dir=None, default_cidr="10.244.0.0/16"):
containers without an explicit script follow simcommand.py's command rules (simscript.derive), exec
follows simexec.py's rule; with a state_dir, run() restores the journalled state first
(RuntimeUnavailable if another process holds it) and discard_state() forgets it. Beyond the Protocol,
for node/simulated.py: script_pod(uid, PodScript | None), assign_pod_cidr(label, value, cidr),
probe_fails(container_id, kind); a PodScript comes from simrules.pod_script(annotations, completes=...)
(ScriptError names the bad annotation).
New code here: a runtime capability goes into the Protocol (base.py) and into both runtimes, with a
contract test that runs against each (tests/runtime/).
Only podman.py imports podman-py; the apiserver and the reconcilers never import a concrete
runtime (import-linter).
Must not import: anything above the runtime layer (see ARCHITECTURE.md).
"""
