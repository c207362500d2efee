"""How `./dev test` shares the suite between its two pytest-xdist workers (`-n 2 --dist loadscope`).

The work units are modules: a module's tests run on one worker, in file order (its module-scoped
clusters start once; some modules' tests build on each other). The modules in HOST_GLOBAL use what
the whole host has only one of, so they form one unit and never run beside each other: service
networking (the service range's local route, the cluster DNS address 10.96.0.10:53, the kernel's
nftables table `orchestra-netpol`), the multi-node link (`orchnodes`, `orchestra-worker-*`
namespaces), and fixed addresses of their own. Every other module keeps to its own
(free ports, temporary directories, Podman pods labelled with its cluster's id), so it may run beside
any of them.

Each worker orders its collection so the HOST_GLOBAL unit is handed out first (the longest unit
starts at once), then the e2e modules, then the rest: the last units are short, and both workers
finish close together.

The scheduler is pytest-xdist's loadscope with modules (not classes) as scopes and the HOST_GLOBAL
modules as one scope: xdist's own loadgroup marks do not take with pytest 9.2 (it renames items
through an attribute pytest no longer reads)."""

from __future__ import annotations

from typing import Any

import pytest

HOST_GROUP = "host-global"
HOST_GLOBAL = frozenset({
    # service networking on the host (the service route, 10.96.0.10:53, kube-proxy's listeners)
    "tests/e2e/test_auth_podman.py",
    "tests/e2e/test_examples.py",
    "tests/e2e/test_ingress_podman.py",
    "tests/e2e/test_network_podman.py",
    # ... and the nftables table `inet orchestra-netpol`
    "tests/e2e/test_netpol_podman.py",
    # ... and the multi-node link orchnodes, the namespaces orchestra-worker-*
    "tests/e2e/test_multinode_e2e.py",
    "tests/e2e/test_podroutes_netns.py",
    # ... and it asserts no service route is left, and that no other cluster's pods were swept
    "tests/e2e/test_up_stop.py",
    # cluster DNS on 10.96.0.10:53 in a namespace of its own, the fixed link 10.232.0.0/24
    "tests/e2e/test_join_network_e2e.py",
})


def scope_of(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return HOST_GROUP if module in HOST_GLOBAL else module


def rank(nodeid: str) -> int:
    """Where a test's unit goes in the queue: HOST_GLOBAL first, e2e next, then the rest."""
    if scope_of(nodeid) == HOST_GROUP:
        return 0
    return 1 if nodeid.startswith("tests/e2e/") else 2


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: the controller queues units in this order
        items.sort(key=lambda item: rank(item.nodeid))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    config.option.loadscopereorder = False  # the workers' order (not the largest units first)
    return ModuleScheduling(config, log)
