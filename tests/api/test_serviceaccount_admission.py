"""The ServiceAccount admission plugin on the API core (kube's plugin/pkg/admission/serviceaccount)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from orchestra.api.errors import AlreadyExists, Forbidden
from orchestra.api.policy.serviceaccount import ServiceAccountAdmission, token_volume_source
from orchestra.api.request.core import ApiCore
from orchestra.app.bootstrap import bootstrap
from orchestra.store import Store

MOUNT = {"name": "kube-api-access-abcde", "readOnly": True,
         "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}


async def ensure_default_account(core: ApiCore) -> None:
    """What the serviceaccount controller (or the app's bootstrap) gives the default namespace."""
    rt = core.registry.by_kind("ServiceAccount")
    assert rt is not None
    try:
        await core.create(rt, "default", {"metadata": {"name": "default"}})
    except AlreadyExists:
        pass


@pytest.fixture
async def core() -> AsyncIterator[ApiCore]:
    store = Store.open_memory()
    c = ApiCore(store, admission=(ServiceAccountAdmission(suffix=lambda: "abcde"),))
    await bootstrap(c)
    await ensure_default_account(c)
    yield c
    store.close()


async def create(
    core: ApiCore, kind: str, obj: dict[str, Any], namespace: str | None = "default"
) -> dict[str, Any]:
    rt = core.registry.by_kind(kind)
    assert rt is not None
    return (await core.create(rt, namespace, obj)).obj


def pod(name: str = "p", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "i"}], **spec}}


async def test_a_pod_gets_the_default_account_and_its_token_volume(core: ApiCore) -> None:
    spec = (await create(core, "Pod", pod(initContainers=[{"name": "init", "image": "i"}])))["spec"]
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"
    assert spec["volumes"] == [{"name": "kube-api-access-abcde", "projected": token_volume_source()}]
    assert token_volume_source()["sources"][0] == {"serviceAccountToken": {"expirationSeconds": 3607,
                                                                           "path": "token"}}
    assert spec["containers"][0]["volumeMounts"] == [MOUNT]
    assert spec["initContainers"][0]["volumeMounts"] == [MOUNT]


OPT_OUT = {
    "pod-says-no": ({"automountServiceAccountToken": False}, None),
    "account-says-no": ({"serviceAccountName": "quiet"}, False),
}


@pytest.mark.parametrize(("spec", "account_automount"), OPT_OUT.values(), ids=OPT_OUT.keys())
async def test_no_token_when_the_pod_or_its_account_says_no(core: ApiCore, spec: dict[str, Any],
                                                            account_automount: bool | None) -> None:
    if account_automount is not None:
        await create(core, "ServiceAccount", {"metadata": {"name": "quiet"},
                                              "automountServiceAccountToken": account_automount})
    got = (await create(core, "Pod", pod(**spec)))["spec"]
    assert "volumes" not in got
    assert "volumeMounts" not in got["containers"][0]


async def test_the_pods_word_wins_over_its_accounts(core: ApiCore) -> None:
    await create(
        core, "ServiceAccount", {"metadata": {"name": "quiet"}, "automountServiceAccountToken": False}
    )
    got = (await create(core, "Pod", pod(serviceAccountName="quiet", automountServiceAccountToken=True)))[
        "spec"
    ]
    assert got["containers"][0]["volumeMounts"] == [MOUNT]


async def test_a_container_with_its_own_mount_there_keeps_it(core: ApiCore) -> None:
    own = {"name": "mine", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
    spec = pod(volumes=[{"name": "mine", "emptyDir": {}}])
    spec["spec"]["containers"] = [
        {"name": "a", "image": "i", "volumeMounts": [own]},
        {"name": "b", "image": "i"},
    ]
    got = (await create(core, "Pod", spec))["spec"]
    assert got["containers"][0]["volumeMounts"] == [own]
    assert got["containers"][1]["volumeMounts"] == [MOUNT]
    assert [v["name"] for v in got["volumes"]] == ["mine", "kube-api-access-abcde"]


async def test_image_pull_secrets_come_from_the_account(core: ApiCore) -> None:
    await create(
        core, "ServiceAccount", {"metadata": {"name": "puller"}, "imagePullSecrets": [{"name": "reg"}]}
    )
    assert (await create(core, "Pod", pod(serviceAccountName="puller")))["spec"]["imagePullSecrets"] == [
        {"name": "reg"}]
    mine = await create(
        core, "Pod", pod("q", serviceAccountName="puller", imagePullSecrets=[{"name": "own"}])
    )
    assert mine["spec"]["imagePullSecrets"] == [{"name": "own"}]


async def test_a_missing_account_is_refused_as_kube_refuses_it(core: ApiCore) -> None:
    with pytest.raises(Forbidden) as caught:
        await create(core, "Pod", pod(serviceAccountName="ghost"))
    assert caught.value.message == (
        'pods "p" is forbidden: service account default/ghost was not found, retry '
        "after the service account is created"
    )
    assert caught.value.code == 403


async def test_the_default_account_is_waited_for_a_moment(core: ApiCore,
                                                           autojump_clock: trio.testing.MockClock) -> None:
    await create(core, "Namespace", {"metadata": {"name": "fresh"}}, None)

    async def account_arrives() -> None:
        await trio.sleep(0.5)  # the serviceaccount controller's first sync, say
        await create(core, "ServiceAccount", {"metadata": {"name": "default"}}, "fresh")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(account_arrives)
            got = await create(core, "Pod", pod(), "fresh")
    assert got["spec"]["serviceAccountName"] == "default"


async def test_the_default_account_is_not_waited_for_forever(core: ApiCore,
                                                             autojump_clock: trio.testing.MockClock) -> None:
    await create(core, "Namespace", {"metadata": {"name": "bare"}}, None)
    start = trio.current_time()
    with trio.fail_after(10), pytest.raises(Forbidden, match="service account bare/default was not found"):
        await create(core, "Pod", pod(), "bare")
    assert 0.9 <= trio.current_time() - start <= 1.8  # 9 pauses of 0.1-0.2 s, as kube's 10 lookups


async def test_updates_are_left_alone(core: ApiCore) -> None:
    created = await create(core, "Pod", pod())
    rt = core.registry.by_kind("Pod")
    assert rt is not None
    created["metadata"]["labels"] = {"a": "b"}
    updated = (await core.update(rt, "default", "p", created)).obj
    assert updated["spec"]["volumes"] == created["spec"]["volumes"]


async def test_ephemeral_containers_get_no_token_mount(core: ApiCore) -> None:
    """kube's plugin mounts the token into init and app containers at create only: an ephemeral
    container (pods/ephemeralcontainers, an update) has only the mounts it asks for."""
    created = await create(core, "Pod", pod())
    rt = core.registry.by_kind("Pod")
    assert rt is not None
    mounted = {"name": "mounted", "image": "i", "volumeMounts": [{**MOUNT, "mountPath": "/sa"}]}
    created["spec"]["ephemeralContainers"] = [{"name": "dbg", "image": "i"}, mounted]
    spec = (await core.update(rt, "default", "p", created, subresource="ephemeralcontainers")).obj["spec"]
    assert [c.get("volumeMounts") for c in spec["ephemeralContainers"]] == [None, mounted["volumeMounts"]]
    assert spec["containers"][0]["volumeMounts"] == [MOUNT]
    assert spec["volumes"] == created["spec"]["volumes"]
