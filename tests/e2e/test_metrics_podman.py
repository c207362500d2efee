"""`kubectl top` against real Podman pods (the module-scoped cluster of test_kubectl_pods: podman=True,
network=False): a pod that spins a CPU shows up with most of a core, the host node with its usage."""

from __future__ import annotations

import pytest

from tests.e2e.test_kubectl_pods import (  # noqa: F401  (the module-scoped cluster fixture)
    PodmanCluster,
    cluster,
    delete_quietly,
    phase,
    pod,
    shell,
)

pytestmark = [pytest.mark.podman, pytest.mark.kubectl, pytest.mark.slow]


def _millicores(text: str) -> int:
    return int(text.removesuffix("m")) if text.endswith("m") else int(text) * 1000


def test_kubectl_top_measures_podman_pods_and_the_host(cluster: PodmanCluster) -> None:  # noqa: F811
    try:
        cluster.apply(pod("spinner", [shell("spin", "while :; do :; done")], terminationGracePeriodSeconds=0))
        cluster.apply(pod("sleeper", [shell("nap", "exec sleep 3600")], terminationGracePeriodSeconds=0))
        for name in ("spinner", "sleeper"):
            cluster.wait_pod(name, lambda p: phase(p) == "Running", limit=90)
        rows = {
            line.split()[0]: line.split()
            for line in cluster.kubectl("top", "pods", "--no-headers").stdout.splitlines()
        }
        assert _millicores(rows["spinner"][1]) >= 300, rows  # most of a core (2 cores, a loaded CI machine)
        assert _millicores(rows["sleeper"][1]) < 100, rows
        assert rows["spinner"][2].endswith("Mi") and int(rows["spinner"][2][:-2]) >= 0
        nodes = cluster.kubectl("top", "nodes", "--no-headers").stdout.split()
        assert _millicores(nodes[1]) >= 300 and nodes[3].endswith("Mi") and int(nodes[3][:-2]) > 100, nodes
    finally:
        delete_quietly(cluster, "spinner", "sleeper")
