"""Where the store's keys live in etcd (orchestra.store.etcdkeys): kube-apiserver's layout, a
bijection between store keys and etcd keys; keys it cannot place are refused, keys it did not write
are not the store's."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestra.api.registry import DEFAULT_REGISTRY
from orchestra.store import StoreError
from orchestra.store.etcdkeys import IDENTITY, KUBE_LAYOUT


@pytest.mark.parametrize(
    ("store_key", "etcd_key"),
    [
        ("/registry/core/pods/default/web-1", "/registry/pods/default/web-1"),
        ("/registry/core/configmaps/kube-system/c", "/registry/configmaps/kube-system/c"),
        ("/registry/core/namespaces/default", "/registry/namespaces/default"),
        # kube-apiserver's SpecialDefaultResourcePrefixes
        ("/registry/core/nodes/node-1", "/registry/minions/node-1"),
        ("/registry/core/services/default/web", "/registry/services/specs/default/web"),
        ("/registry/core/endpoints/default/web", "/registry/services/endpoints/default/web"),
        ("/registry/core/replicationcontrollers/default/rc", "/registry/controllers/default/rc"),
        ("/registry/networking.k8s.io/ingresses/default/in", "/registry/ingress/default/in"),
        # built-in groups: the resource alone
        ("/registry/apps/deployments/default/web", "/registry/deployments/default/web"),
        ("/registry/rbac.authorization.k8s.io/clusterroles/admin", "/registry/clusterroles/admin"),
        ("/registry/coordination.k8s.io/leases/kube-node-lease/n", "/registry/leases/kube-node-lease/n"),
        # apiextensions-apiserver and kube-aggregator key by group and resource, as do custom resources
        ("/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com",
         "/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com"),
        ("/registry/apiregistration.k8s.io/apiservices/v1.apps",
         "/registry/apiregistration.k8s.io/apiservices/v1.apps"),
        ("/registry/example.com/widgets/default/w", "/registry/example.com/widgets/default/w"),
        ("/registry/gateway.networking.k8s.io/gateways/default/g",
         "/registry/gateway.networking.k8s.io/gateways/default/g"),
        # outside /registry/: as it is
        ("/orchestra/bootstrap", "/orchestra/bootstrap"),
    ],
)
def test_kube_apiservers_keys(store_key: str, etcd_key: str) -> None:
    assert KUBE_LAYOUT.to_etcd(store_key) == etcd_key
    assert KUBE_LAYOUT.from_etcd(etcd_key) == store_key
    assert IDENTITY.to_etcd(store_key) == IDENTITY.from_etcd(store_key) == store_key


def test_every_stored_type_of_the_registry_has_its_own_place() -> None:
    seen: dict[str, str] = {}
    for group, version in DEFAULT_REGISTRY.group_versions():
        for rt in DEFAULT_REGISTRY.in_group(group, version):
            key = rt.key("ns", "name") if rt.namespaced else rt.key(None, "name")
            etcd_key = KUBE_LAYOUT.to_etcd(key)
            assert KUBE_LAYOUT.from_etcd(etcd_key) == key
            assert seen.setdefault(etcd_key, key) == key, f"{key} and {seen[etcd_key]} share {etcd_key}"
    assert "/registry/events/ns/name" in seen  # events.k8s.io's Events are the core Events, as in kube


def test_keys_with_no_place_are_refused_and_keys_of_another_layout_are_not_the_stores() -> None:
    for key in ("/registry/pods/default/web",  # would read back as the core Pod's key
                "/registry/core/widgets/default/w",  # core has no such resource
                "/registry/services/specs/x"):
        with pytest.raises(StoreError, match="has no place in etcd's kube-apiserver key layout"):
            KUBE_LAYOUT.to_etcd(key)
    for key in ("/registry/core/pods/default/web",  # the store's own keys, not kube's layout
                "/registry/services/other/default/web", "/registry/pods/", "/registry/minions"):
        assert KUBE_LAYOUT.from_etcd(key) is None


segment = st.text(st.characters(whitelist_categories=("Ll", "Nd"), whitelist_characters="-."), min_size=1,
                  max_size=12)


GROUPS = st.sampled_from(["core", "apps", "batch", "networking.k8s.io", "example.com", "x.y"])
RESOURCES = st.sampled_from(["pods", "services", "endpoints", "nodes", "deployments", "ingresses"])


@given(st.one_of(GROUPS, segment), st.one_of(RESOURCES, segment), st.lists(segment, min_size=1, max_size=2))
def test_the_layout_is_a_bijection(group: str, resource: str, rest: list[str]) -> None:
    key = f"/registry/{group}/{resource}/{'/'.join(rest)}"
    try:
        etcd_key = KUBE_LAYOUT.to_etcd(key)
    except StoreError:
        return  # refused: never written
    assert KUBE_LAYOUT.from_etcd(etcd_key) == key
    assert KUBE_LAYOUT.to_etcd(KUBE_LAYOUT.from_etcd(etcd_key) or "") == etcd_key


@given(st.lists(segment, min_size=1, max_size=4))
def test_every_etcd_key_the_store_takes_goes_back_to_itself(parts: list[str]) -> None:
    etcd_key = "/registry/" + "/".join(parts)
    key = KUBE_LAYOUT.from_etcd(etcd_key)
    if key is not None:
        assert KUBE_LAYOUT.to_etcd(key) == etcd_key
