"""Custom resources and CRDs go through the API core's Codec like every stored object: with an
aesgcm transformer on their key prefixes, every write path (create, update, status, scale, patch,
apply, a delete that marks the object, at a served version other than the storage one too) leaves
only encrypted values in the store, every read (get, list, watch) sees plain objects, and a new core
over the same store loads the CRDs' kinds through the codec."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import aclosing

import orjson
import pytest
import trio

from orchestra.api.registry import CRD, DEFAULT_REGISTRY
from orchestra.api.request import encryption
from orchestra.api.request.core import ApiCore
from orchestra.api.request.stored import Codec
from orchestra.api.request.types import WriteOptions
from orchestra.api.request.watch import watch
from orchestra.app.bootstrap import bootstrap
from orchestra.client.local import LocalClient
from orchestra.reconcilers.crd import CRDController
from orchestra.store import Store
from tests.api.test_custom_resources import established, widget, widget_crd
from tests.api.test_encryption import KEY, config

WIDGETS = "/registry/example.com/widgets/"
SEALED = b"k8s:enc:aesgcm:v1:key1:"


def sealing_codec() -> Codec:
    """The Secret chain (aesgcm key1, then identity), put on the CRDs' and the widgets' prefixes."""
    chain = encryption.transformers(config(("key1", KEY)), DEFAULT_REGISTRY)["/registry/core/secrets/"]
    return Codec({CRD.key_prefix(): chain, WIDGETS: chain})


@pytest.fixture
async def core() -> AsyncIterator[ApiCore]:
    store = Store.open_memory()
    c = ApiCore(store, codec=sealing_codec())
    await bootstrap(c)
    async with trio.open_nursery() as nursery:
        await nursery.start(CRDController(LocalClient(c)).run)
        yield c
        nursery.cancel_scope.cancel()
    store.close()


def all_sealed(core: ApiCore, prefix: str) -> int:
    kvs, _ = core.store.range(prefix)
    assert all(kv.value.startswith(SEALED) for kv in kvs), [kv.value[:40] for kv in kvs]
    return len(kvs)


async def test_custom_resources_are_stored_through_the_codec(core: ApiCore) -> None:
    crd = widget_crd()
    beta = copy.deepcopy(crd["spec"]["versions"][0])
    beta.update(name="v1beta1", storage=False)
    crd["spec"]["versions"].append(beta)
    rt = await established(core, crd)
    old = core.registry.by_path("example.com", "v1beta1", "widgets")
    assert old is not None and all_sealed(core, CRD.key_prefix()) == 1
    await core.create(rt, "default", widget("a"))
    await core.create(old, "default", {**widget("b"), "apiVersion": "example.com/v1beta1"})
    a = core.get(rt, "default", "a")
    await core.update(rt, "default", "a", {**a, "spec": {"color": "blue", "replicas": 2}})
    await core.patch(rt, "default", "a", "application/merge-patch+json",
                     orjson.dumps({"status": {"replicas": 2}}), subresource="status")
    scale = core.get_scale(rt, "default", "a")
    await core.update_scale(rt, "default", "a", {**scale, "spec": {"replicas": 3}})
    await core.patch(old, "default", "b", "application/merge-patch+json",
                     orjson.dumps({"metadata": {"finalizers": ["example.com/hold"]}}))
    applied = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "c"},
               "spec": {"color": "red"}}
    await core.patch(rt, "default", "c", "application/apply-patch+yaml", orjson.dumps(applied),
                     WriteOptions(field_manager="me"))
    _, gone = await core.delete(old, "default", "b")  # held by its finalizer: marked, written again
    assert not gone
    assert all_sealed(core, WIDGETS) == 3
    assert core.get(rt, "default", "a")["spec"] == {"color": "blue", "replicas": 3}
    marked = core.get(old, "default", "b")
    assert marked["apiVersion"] == "example.com/v1beta1" and marked["metadata"]["deletionTimestamp"]
    stored = core.codec.decode(core.store.get(f"{WIDGETS}default/b"))  # type: ignore[arg-type]
    assert stored["apiVersion"] == "example.com/v1"  # kept at the storage version
    assert [o["metadata"]["name"] for o in core.list(old, "default").items] == ["a", "b", "c"]
    with trio.fail_after(5):
        async with aclosing(watch(core, old, "default", resource_version="0")) as events:
            seen = [await anext(events) for _ in range(3)]
    assert [(t, o["apiVersion"], o["spec"]["color"]) for t, o in seen] == [
        ("ADDED", "example.com/v1beta1", "blue"),
        ("ADDED", "example.com/v1beta1", "red"),
        ("ADDED", "example.com/v1beta1", "red"),
    ]
    again = ApiCore(core.store, codec=sealing_codec())  # a restart: the CRDs are read through the codec
    served = again.registry.by_path("example.com", "v1beta1", "widgets")
    assert served is not None and again.get(served, "default", "c")["spec"] == {"color": "red", "replicas": 1}
