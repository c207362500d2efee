"""The control loops: kube-scheduler and kube-controller-manager's controllers, each level-based.

Every reconciler is a `controller.Controller` (or, for the scheduler, a service of its own) on a
client: it reads its informers' caches and writes through the API with the resourceVersion it read.
  * scheduler/            `Scheduler`: kube-scheduler's default profile (its package docstring).
  * workloads/            `workload_controllers(client)`: ReplicaSet, ReplicationController,
                          Deployment, DaemonSet, StatefulSet, Job (with TTL-after-finished), CronJob.
  * apiservices.py        `AutoRegisterController`: kube-aggregator's autoregister (the served
                          groups' APIServices), started by the app with the API server.
  * cluster.py            `cluster_controllers(client, ...)` / `run_cluster_controllers`: the others,
                          composed on one client: crd.py (CustomResourceDefinitions' names,
                          Established, and deletion of their objects), garbage_collector.py
                          (ownerReferences, the three propagation policies, custom kinds too),
                          namespace.py (namespace deletion), node_lifecycle.py
                          (node health from Leases, taints, NoExecute eviction), endpoints.py
                          (Endpoints and EndpointSlices), disruption.py (PodDisruptionBudget status,
                          with api/policy/pdb.py), volumes.py (PVC binding, the local-path
                          provisioner), protection.py (removes the pvc-/pv-protection finalizers
                          api/policy/admission.py adds), resourcequota.py (ResourceQuota status,
                          with api/policy/quota/), serviceaccounts.py (every namespace's
                          `default` ServiceAccount and kube-root-ca.crt), tokens.py (legacy
                          ServiceAccount token Secrets).
  * autoscaling/          `hpa_controllers(client, metrics, timings=)`: the HorizontalPodAutoscaler
                          controller; targets through `Client.get_scale`/`update_scale`, usage
                          through a `client.base.MetricsClient` (the app hands it
                          LocalMetricsClient when the server serves the resource metrics API).
app/components.py starts all four groups under the cluster's supervisor.

New code here: a new controller in a module of its own (a package once it needs several),
composed in cluster.py or workloads/__init__.py; what it shares with the API (a kind's helper)
goes to api/policy/, what it shares with other controllers to controller/ or orchestra.objects.
Must not import: the store (the API only through a client), node, net, apiserver, app, cli, or a
concrete runtime; and the reconcilers are independent of each other (import-linter checks all).
"""
