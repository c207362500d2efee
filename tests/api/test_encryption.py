"""Secrets encrypted at rest: the aesgcm/identity providers and their chain, the EncryptionConfiguration
orchestra reads, and the API core's codec — every read (get, list, label-selected list, watch) sees
plain objects while the store holds only `k8s:enc:aesgcm:v1:<key>:` values for Secrets."""

from __future__ import annotations

import base64
from contextlib import aclosing
from typing import Any

import pytest
import trio

from orchestra.api.errors import InternalError
from orchestra.api.registry import DEFAULT_REGISTRY
from orchestra.api.request import encryption
from orchestra.api.request.core import LABEL_CACHE_MIN, ApiCore
from orchestra.api.request.stored import Codec, TransformError
from orchestra.api.request.watch import watch
from orchestra.client.local import LocalClient
from orchestra.store import Store
from tests.controller.harness import Api

Obj = dict[str, Any]
KEY = base64.b64encode(b"k" * 32).decode()
OTHER = base64.b64encode(b"o" * 32).decode()
SECRET_VALUE = b"hunter2-correct-horse"


def config(*keys: tuple[str, str], identity: bool = True, resources: tuple[str, ...] = ("secrets",)) -> Obj:
    providers: list[Obj] = [{"aesgcm": {"keys": [{"name": n, "secret": s} for n, s in keys]}}] if keys else []
    if identity:
        providers.append({"identity": {}})
    return {
        "kind": "EncryptionConfiguration",
        "apiVersion": "apiserver.config.k8s.io/v1",
        "resources": [{"resources": list(resources), "providers": providers}],
    }


def codec(doc: Obj) -> Codec:
    return Codec(encryption.transformers(doc, DEFAULT_REGISTRY))


async def api_with(store: Store, doc: Obj | None) -> Api:
    core = ApiCore(store, codec=codec(doc) if doc else None)
    api = Api(store, core, LocalClient(core))
    if store.get("/registry/core/namespaces/default") is None:
        await api.create("Namespace", {"metadata": {"name": "default"}}, None)
    return api


def secret(name: str, labels: dict[str, str] | None = None) -> Obj:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "data": {"password": base64.b64encode(SECRET_VALUE).decode()},
    }


def stored(api: Api, name: str) -> bytes:
    kv = api.store.get(f"/registry/core/secrets/default/{name}")
    assert kv is not None
    return kv.value


def test_aesgcm_values_have_kubes_layout_and_are_bound_to_their_key() -> None:
    t = encryption.transformers(config(("key1", KEY)), DEFAULT_REGISTRY)["/registry/core/secrets/"]
    value = t.to_storage(b'{"kind":"Secret"}', b"/registry/core/secrets/ns/a")
    assert value.startswith(b"k8s:enc:aesgcm:v1:key1:")
    assert len(value) == len(b"k8s:enc:aesgcm:v1:key1:") + 12 + len(b'{"kind":"Secret"}') + 16
    assert t.from_storage(value, b"/registry/core/secrets/ns/a") == (b'{"kind":"Secret"}', False)
    with pytest.raises(TransformError, match="message authentication failed"):
        t.from_storage(value, b"/registry/core/secrets/ns/b")  # copied under another key
    assert t.to_storage(b"x", b"k") != t.to_storage(b"x", b"k")  # a fresh nonce every time


def test_reads_follow_the_provider_order_and_mark_stale_values() -> None:
    old = encryption.transformers(config(("old", OTHER)), DEFAULT_REGISTRY)["/registry/core/secrets/"]
    rotated = encryption.transformers(config(("new", KEY), ("old", OTHER)), DEFAULT_REGISTRY)
    t = rotated["/registry/core/secrets/"]
    assert t.from_storage(old.to_storage(b"{}", b"k"), b"k") == (b"{}", True)  # an older key: stale
    assert t.from_storage(b'{"plain":1}', b"k") == (b'{"plain":1}', True)  # identity: stale
    assert t.from_storage(t.to_storage(b"{}", b"k"), b"k") == (b"{}", False)
    no_identity = encryption.transformers(config(("new", KEY), identity=False), DEFAULT_REGISTRY)
    with pytest.raises(TransformError, match="no matching prefix found"):
        no_identity["/registry/core/secrets/"].from_storage(b'{"plain":1}', b"k")
    only_identity = encryption.transformers(config(), DEFAULT_REGISTRY)
    with pytest.raises(TransformError, match="identity transformer tried to read encrypted data"):
        only_identity["/registry/core/secrets/"].from_storage(t.to_storage(b"{}", b"k"), b"k")


BAD_CONFIGS = [
    ("wrong-kind", {**config(("k", KEY)), "kind": "Config"}, "kind/apiVersion"),
    (
        "short-key",
        config(("k", base64.b64encode(b"x" * 10).decode())),
        "resources[0].providers[0].aesgcm.keys[0].secret: must be 16, 24 or 32 bytes, not 10",
    ),
    ("not-base64", config(("k", "!!")), "resources[0].providers[0].aesgcm.keys[0].secret: not valid base64"),
    ("colon-in-name", config(("a:b", KEY)), "resources[0].providers[0].aesgcm.keys[0].name"),
    (
        "unknown-provider",
        {**config(), "resources": [{"resources": ["secrets"], "providers": [{"kms": {}}]}]},
        "resources[0].providers[0]: unsupported provider 'kms'",
    ),
    ("unknown-resource", config(("k", KEY), resources=("widgets",)), "unknown resource 'widgets'"),
    ("no-providers", config(identity=False), "providers: at least one provider is required"),
]


@pytest.mark.parametrize(("doc", "message"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_unusable_configs_are_refused_naming_the_field(doc: Obj, message: str) -> None:
    with pytest.raises(encryption.ConfigError) as exc:
        encryption.transformers(doc, DEFAULT_REGISTRY)
    assert message in str(exc.value)


def test_new_config_encrypts_secrets_and_reads_plain_ones() -> None:
    doc = encryption.new_config()
    t = encryption.transformers(doc, DEFAULT_REGISTRY)
    assert list(t) == ["/registry/core/secrets/"]
    assert len(base64.b64decode(doc["resources"][0]["providers"][0]["aesgcm"]["keys"][0]["secret"])) == 32
    assert t["/registry/core/secrets/"].from_storage(b"{}", b"k") == (b"{}", True)


async def test_secrets_are_encrypted_in_the_store_and_plain_through_the_api() -> None:
    with trio.fail_after(10):
        api = await api_with(Store.open_memory(), config(("key1", KEY)))
        created = await api.create("Secret", secret("db", {"app": "db"}))
        value = stored(api, "db")
        assert value.startswith(b"k8s:enc:aesgcm:v1:key1:")
        assert (
            SECRET_VALUE not in value
            and base64.b64encode(SECRET_VALUE) not in value
            and b"db" not in value[23:]
        )
        assert api.get("Secret", "db") == created
        patched = await api.client.patch(
            api.rt("Secret"), "default", "db", {"metadata": {"labels": {"v": "2"}}}
        )
        assert patched["data"] == created["data"] and stored(api, "db").startswith(b"k8s:enc:")
        assert [s["metadata"]["name"] for s in api.list("Secret", "default")] == ["db"]
        cm = await api.create("ConfigMap", {"metadata": {"name": "plain"}, "data": {"k": "v"}})
        assert api.store.get("/registry/core/configmaps/default/plain").value.startswith(b"{")  # type: ignore[union-attr]
        assert api.get("ConfigMap", "plain") == cm


async def test_label_selected_lists_and_watches_decrypt() -> None:
    with trio.fail_after(20):
        api = await api_with(Store.open_memory(), config(("key1", KEY)))
        for i in range(LABEL_CACHE_MIN + 5):  # past the size where a LIST reads labels from its cache
            await api.create("Secret", secret(f"s{i}", {"n": str(i)}))
        items = (await api.client.list(api.rt("Secret"), "default", label_selector="n in (3,7)"))[0]
        assert sorted(s["metadata"]["name"] for s in items) == ["s3", "s7"]
        assert all(s["data"]["password"] == base64.b64encode(SECRET_VALUE).decode() for s in items)
        rv = api.core.list(api.rt("Secret"), "default").resource_version
        events: list[tuple[str, Obj]] = []

        async def follow() -> None:
            async with aclosing(watch(api.core, api.rt("Secret"), "default", resource_version=rv)) as stream:
                async for event in stream:
                    events.append(event)
                    if len(events) == 3:
                        return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            await trio.testing.wait_all_tasks_blocked()
            await api.create("Secret", secret("new"))
            await api.client.patch(api.rt("Secret"), "default", "new", {"metadata": {"labels": {"x": "y"}}})
            await api.client.delete(api.rt("Secret"), "default", "new")
        assert [(t, o["metadata"]["name"], o["data"]["password"]) for t, o in events] == [
            (t, "new", base64.b64encode(SECRET_VALUE).decode()) for t in ("ADDED", "MODIFIED", "DELETED")
        ]


async def test_watch_list_initial_events_decrypt() -> None:
    """A watch-list stream (sendInitialEvents) reads its initial state through the codec too."""
    with trio.fail_after(10):
        api = await api_with(Store.open_memory(), config(("key1", KEY)))
        for name in ("a", "b"):
            await api.create("Secret", secret(name))
        stream = watch(api.core, api.rt("Secret"), "default", send_initial_events=True,
                       bookmark_interval=3600.0)
        async with aclosing(stream) as events:
            got = [await anext(events) for _ in range(3)]
    assert [(t, o["metadata"].get("name"), o.get("data")) for t, o in got] == [
        ("ADDED", "a", secret("a")["data"]), ("ADDED", "b", secret("b")["data"]), ("BOOKMARK", None, None)]


async def test_plain_secrets_are_read_then_encrypted_by_the_migration_or_their_next_write() -> None:
    with trio.fail_after(10):
        store = Store.open_memory()
        old = await api_with(store, None)  # an orchestra before encryption at rest
        for name in ("a", "b", "c"):
            await old.create("Secret", secret(name))
        assert stored(old, "a").startswith(b"{")
        api = await api_with(store, config(("key1", KEY)))
        assert api.get("Secret", "a")["data"] == secret("a")["data"]  # type: ignore[index]
        await api.client.patch(api.rt("Secret"), "default", "a", {"metadata": {"labels": {"x": "y"}}})
        assert stored(api, "a").startswith(b"k8s:enc:aesgcm:v1:key1:")
        rv_b = api.get("Secret", "b")["metadata"]["resourceVersion"]  # type: ignore[index]
        assert await encryption.rewrite_stale(store, api.core.codec) == 2  # b and c; a is current
        assert all(stored(api, n).startswith(b"k8s:enc:aesgcm:v1:key1:") for n in "abc")
        assert await encryption.rewrite_stale(store, api.core.codec) == 0
        b = api.get("Secret", "b")
        assert b is not None and b["data"] == secret("b")["data"] and b["metadata"]["resourceVersion"] != rv_b


async def test_a_value_that_cannot_be_decrypted_is_kubes_500() -> None:
    with trio.fail_after(10):
        store = Store.open_memory()
        api = await api_with(store, config(("key1", KEY)))
        await api.create("Secret", secret("s"))
        lost = await api_with(store, config(("key2", OTHER)))  # the key file was replaced
        with pytest.raises(InternalError) as exc:
            lost.core.get(lost.rt("Secret"), "default", "s")
        assert exc.value.message == (
            "Internal error occurred: unable to transform key "
            '"/registry/core/secrets/default/s": identity transformer tried to read encrypted data'
        )
        assert exc.value.code == 500
