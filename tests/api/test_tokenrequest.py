"""serviceaccounts/token (TokenRequest) on the API core, as kube-apiserver 1.32 answers it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest

from orchestra.api.errors import AlreadyExists, ApiError, BadRequest, Conflict, Invalid, NotFound
from orchestra.api.request.core import ApiCore
from orchestra.api.request.tokenrequest import create_token
from orchestra.api.serviceaccount import ISSUER
from orchestra.api.serviceaccount.tokens import TokenIssuer, new_signing_key
from orchestra.app.bootstrap import bootstrap
from orchestra.store import Store

NOW = 1_800_000_000.0


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
    c = ApiCore(store, tokens=TokenIssuer(new_signing_key(), clock=lambda: NOW))
    await bootstrap(c)
    await ensure_default_account(c)
    yield c
    store.close()


async def make(
    core: ApiCore, kind: str, obj: dict[str, Any], namespace: str | None = "default"
) -> dict[str, Any]:
    rt = core.registry.by_kind(kind)
    assert rt is not None
    return (await core.create(rt, namespace, obj)).obj


def claims(answer: dict[str, Any]) -> dict[str, Any]:
    return jwt.decode(answer["status"]["token"], options={"verify_signature": False})


async def test_defaults_and_the_answer(core: ApiCore) -> None:
    answer, warnings = await create_token(core, "default", "default", {"spec": {}})
    assert warnings == []
    assert answer["apiVersion"] == "authentication.k8s.io/v1" and answer["kind"] == "TokenRequest"
    assert answer["metadata"] == {"name": "default", "namespace": "default",
                                  "creationTimestamp": "2027-01-15T08:00:00Z"}
    assert answer["spec"] == {"audiences": [ISSUER], "expirationSeconds": 3600}
    assert answer["status"]["expirationTimestamp"] == "2027-01-15T09:00:00Z"
    got = claims(answer)
    assert got["sub"] == "system:serviceaccount:default:default"
    assert got["exp"] - got["iat"] == 3600
    assert "pod" not in got["kubernetes.io"]


async def test_a_pod_bound_token_names_the_pod_and_its_node(core: ApiCore) -> None:
    node = await make(core, "Node", {"metadata": {"name": "n1"}}, None)
    pod = await make(core, "Pod", {"metadata": {"name": "p"},
                                   "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}})
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": pod["metadata"]["uid"]}
    answer, _ = await create_token(core, "default", "default", {"spec": {"boundObjectRef": ref,
                                                                         "expirationSeconds": 600}})
    private = claims(answer)["kubernetes.io"]
    assert private["pod"] == {"name": "p", "uid": pod["metadata"]["uid"]}
    assert private["node"] == {"name": "n1", "uid": node["metadata"]["uid"]}


async def test_the_kubelets_3607_seconds_are_a_year_warned_after_3607(core: ApiCore) -> None:
    await make(
        core, "Pod", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    )
    body = {
        "spec": {
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p"},
            "expirationSeconds": 3607,
        }
    }
    answer, _ = await create_token(core, "default", "default", body)
    got = claims(answer)
    assert got["exp"] - got["iat"] == 365 * 24 * 3600
    assert got["kubernetes.io"]["warnafter"] == got["iat"] + 3607
    assert answer["status"]["expirationTimestamp"] == "2027-01-15T09:00:07Z"  # what was asked for


async def _pod_of_another_account(core: ApiCore) -> dict[str, Any]:
    await make(core, "ServiceAccount", {"metadata": {"name": "other"}})
    await make(
        core,
        "Pod",
        {
            "metadata": {"name": "q"},
            "spec": {"serviceAccountName": "other", "containers": [{"name": "c", "image": "i"}]},
        },
    )
    return {"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "q"}}}


REFUSED = {
    "too-short": (
        {"spec": {"expirationSeconds": 599}},
        Invalid,
        'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 599: '
        "may not specify a duration less than 10 minutes",
    ),
    "too-long": (
        {"spec": {"expirationSeconds": 2**32 + 1}},
        Invalid,
        'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: '
        "4294967297: may not specify a duration larger than 2^32 seconds",
    ),
    "name-mismatch": (
        {"metadata": {"name": "x"}},
        Invalid,
        'TokenRequest.authentication.k8s.io "default" is invalid: metadata.name: Invalid value: "x": '
        "must match the service account name if specified",
    ),
    "bound-to-a-configmap": (
        {"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "ConfigMap", "name": "c"}}},
        BadRequest,
        "cannot bind token to object of type /v1, Kind=ConfigMap",
    ),
    "bound-to-a-missing-pod": (
        {"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "no"}}},
        NotFound,
        'pods "no" not found',
    ),
    "wrong-type": ({"spec": {"expirationSeconds": "ten"}}, BadRequest, None),
    "another-kind": ({"apiVersion": "v1", "kind": "Pod"}, BadRequest, None),
}


@pytest.mark.parametrize(("body", "error", "message"), REFUSED.values(), ids=REFUSED.keys())
async def test_refused_requests(core: ApiCore, body: dict[str, Any], error: type[ApiError],
                                message: str | None) -> None:
    with pytest.raises(error) as caught:
        await create_token(core, "default", "default", body)
    if message is not None:
        assert caught.value.message == message


async def test_a_pod_of_another_account_cannot_be_bound(core: ApiCore) -> None:
    with pytest.raises(BadRequest) as caught:
        await create_token(core, "default", "default", await _pod_of_another_account(core))
    assert caught.value.message == ('cannot bind token for serviceaccount "default" to pod running with '
                                    "different serviceaccount name.")


async def test_a_stale_uid_is_a_conflict(core: ApiCore) -> None:
    await make(
        core, "Pod", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    )
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "old"}
    with pytest.raises(
        Conflict,
        match=r'Operation cannot be fulfilled on Pod "p": the UID in the bound object '
        r"reference \(old\) does not match",
    ):
        await create_token(core, "default", "default", {"spec": {"boundObjectRef": ref}})


async def test_a_missing_account_is_404(core: ApiCore) -> None:
    with pytest.raises(NotFound, match='serviceaccounts "ghost" not found'):
        await create_token(core, "default", "ghost", {})


async def test_without_a_signing_key_there_is_no_such_subresource() -> None:
    store = Store.open_memory()
    try:
        with pytest.raises(NotFound, match="the server could not find the requested resource"):
            await create_token(ApiCore(store), "default", "default", {})
    finally:
        store.close()
