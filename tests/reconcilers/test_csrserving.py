"""The kubelet-serving CSR approver (reconcilers/csrserving.py) on the real API core: a node's serving
certificate is approved only for that node's own published addresses."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from orchestra.controller.clock import virtual_clock
from orchestra.reconcilers.csrserving import MESSAGE, KubeletServingApprover
from tests.controller.harness import Api, make_api
from tests.csrs import csr, request_pem

SERVING = "kubernetes.io/kubelet-serving"
USAGES = ["digital signature", "server auth"]
NODE_N1 = {"username": "system:node:n1", "groups": ["system:nodes", "system:authenticated"]}
ADDRESSES = [{"type": "InternalIP", "address": "10.0.0.5"}, {"type": "Hostname", "address": "n1"}]


def _serving(
    name: str,
    cn: str = "system:node:n1",
    *,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    usages: list[str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    pem = request_pem(cn, dns=dns, ips=ips)
    return csr(name, pem, signer=SERVING, usages=USAGES if usages is None else usages, **(spec or NODE_N1))


async def _node(api: Api, name: str, addresses: list[dict[str, str]]) -> None:
    node = await api.create("Node", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}, None)
    await api.client.update_status(api.rt("Node"), {**node, "status": {"addresses": addresses}})


def _conditions(api: Api, name: str) -> list[tuple[str, str, str]]:
    found = api.get("CertificateSigningRequest", name, None)
    assert found is not None
    return [
        (c["type"], c["reason"], c["message"]) for c in (found.get("status") or {}).get("conditions") or []
    ]


@pytest.mark.parametrize(
    ("body", "approved"),
    [
        pytest.param(_serving("c", ips=("10.0.0.5",), dns=("n1",)), True, id="ip-and-hostname"),
        pytest.param(_serving("c", ips=("10.0.0.5",)), True, id="ip-only"),
        pytest.param(_serving("c", dns=("N1",)), True, id="hostname-any-case"),
        pytest.param(_serving("c", ips=("10.0.0.5", "10.0.0.6")), False, id="an-address-not-the-nodes"),
        pytest.param(_serving("c", dns=("n1", "kubernetes.default")), False, id="a-name-not-the-nodes"),
        pytest.param(_serving("c", "system:node:n2", ips=("10.0.0.5",)), False, id="cn-of-another-node"),
        pytest.param(
            _serving("c", ips=("10.0.0.5",), username="system:node:n1", groups=["devs"]),
            False,
            id="requester-not-in-system-nodes",
        ),
        pytest.param(
            _serving("c", ips=("10.0.0.5",), username="jane", groups=["system:nodes"]),
            False,
            id="requester-not-the-node",
        ),
        pytest.param(
            _serving("c", ips=("10.0.0.5",), usages=["digital signature", "client auth"]),
            False,
            id="client-usages",
        ),
        pytest.param(
            _serving(
                "c", "system:node:n9", ips=("10.0.0.9",), username="system:node:n9", groups=["system:nodes"]
            ),
            False,
            id="no-such-node",
        ),
        pytest.param(csr("c", request_pem("system:node:n1"), **NODE_N1), False, id="other-signer"),
    ],
)
async def test_approver(autojump_clock: trio.testing.MockClock, body: dict[str, Any], approved: bool) -> None:
    api = await make_api()
    await _node(api, "n1", ADDRESSES)
    await api.create("CertificateSigningRequest", body, None)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(KubeletServingApprover(api.client, clock=virtual_clock()).run)
            await trio.sleep(5)
            conditions = _conditions(api, "c")
            nursery.cancel_scope.cancel()
    assert conditions == ([("Approved", "AutoApproved", MESSAGE)] if approved else [])


async def test_approved_once_the_node_publishes_its_address(autojump_clock: trio.testing.MockClock) -> None:
    """The CSR may come before the node's status carries its addresses: a Node update looks again."""
    api = await make_api()
    await _node(api, "n1", [{"type": "Hostname", "address": "n1"}])
    await api.create("CertificateSigningRequest", _serving("c", ips=("10.0.0.5",), dns=("n1",)), None)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(KubeletServingApprover(api.client, clock=virtual_clock()).run)
            await trio.sleep(5)
            assert _conditions(api, "c") == []
            node = api.get("Node", "n1", None)
            assert node is not None
            await api.client.update_status(api.rt("Node"), {**node, "status": {"addresses": ADDRESSES}})
            await trio.sleep(5)
            assert _conditions(api, "c") == [("Approved", "AutoApproved", MESSAGE)]
            nursery.cancel_scope.cancel()
