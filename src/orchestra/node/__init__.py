"""The node agent: orchestra's kubelet, running the pods bound to a node on a container runtime.

Entry points (long-lived components: `await nursery.start(x.run)`, run again after it raised):
  * agent.py       `NodeAgent(client, runtime, AgentConfig, prober=None)`: registers the Node and its Lease
                   (registration.py), adopts the sandboxes it finds, runs one pod worker per pod;
                   `find_container(runtime, pod, name, previous=)` for logs/exec/attach/port-forward
                   (the app hands it to the apiserver's streams).
  * simulated.py   `SimulatedNodes(client, runtime, count, ...)`: many agents on one (simulated)
                   runtime in one process (`--simulate-nodes N`); each Node's spec.podCIDR, given
                   by the node IPAM controller (`pod_cidr_timeout=`), is its pods' range; podcidr.py
                   plans the controller's cluster CIDR and node mask for N nodes; probes pass
                   unless the pod's script fails them (simprobe.SimulatedProber, on the runtime's
                   probe_fails), and each pod's sim.orchestra.io/* annotations become its PodScript.
  * metrics.py     `UsageCollector`: usage() -> api/metrics.Usage for the metrics API (a simulated
                   pod's usage is scripted by its orchestra.io/simulated-cpu|memory annotations).
One pod's life: pod_worker.py (the level-based sync of one pod: sandbox, volumes, init containers,
sidecars, containers, restarts, termination; a crash is contained to its pod), sandbox.py (pod spec
-> runtime specs, DNS policy, labels), volumes.py (pod volumes on the host), tokens.py (the
ServiceAccount tokens of projected volumes, through TokenRequest, refreshed at 80 % of their life),
env.py (container
environment), probes.py (exec/httpGet/tcpSocket/grpc probes; grpcprobe.GrpcChecker runs grpcio in
worker threads behind a limiter, bounded by the probe's timeout), hooks.py (lifecycle hooks;
stopping one container, a sidecar after the containers it must outlive), sidecars.py (kubelet's
sidecar rules: is_sidecar, regular_done, stop_after), ephemeral.py (ephemeral containers, mixed
into the pod worker: started once, in the target's process namespace), container_views.py (the
ContainerView of each container the pod worker's status is built from, mixed in too), status.py (pod status as
pure functions; ContainerView.sidecar marks restartable init containers for the phase and the
Ready / ContainersReady / Initialized conditions), backoff.py (CrashLoopBackOff), context.py (what
the workers of one agent share).

New code here: kubelet behaviour; a pure rule in the module of its concept (status, env, sandbox,
sidecars) and its effect in pod_worker.py; what the runtime must do goes into the Runtime protocol
(runtime/base.py) and both runtimes.
Must not import: podman or runtime/podman.py (the agent gets its runtime through the protocol in
runtime/base.py), the store (the API only through a client), reconcilers, net, apiserver, app, cli.
"""
