"""Namespace furniture and legacy token Secrets: the serviceaccount controller, root-ca-cert-publisher
and tokens controller (reconcilers/serviceaccounts.py, reconcilers/tokens.py) on the real API core."""

from __future__ import annotations

import base64

import jwt
import trio
import trio.testing

from orchestra.api.serviceaccount.tokens import TokenIssuer, new_signing_key
from orchestra.reconcilers.serviceaccounts import RootCAPublisher, ServiceAccountsController
from orchestra.reconcilers.tokens import TokensController
from tests.controller.harness import make_api, wait_for

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
TOKEN_SECRET = {
    "metadata": {"name": "robot-token", "annotations": {"kubernetes.io/service-account.name": "robot"}},
    "type": "kubernetes.io/service-account-token",
}


async def test_every_namespace_gets_its_default_account_and_the_root_ca(
        autojump_clock: trio.testing.MockClock) -> None:
    api = await make_api("shop")
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(ServiceAccountsController(api.client).run)
            await nursery.start(RootCAPublisher(api.client, CA).run)
            await wait_for(api, lambda: api.get("ServiceAccount", "default", "shop") is not None
                           and api.get("ConfigMap", "kube-root-ca.crt", "shop") is not None)
            cm = api.get("ConfigMap", "kube-root-ca.crt", "shop")
            assert cm is not None and cm["data"] == {"ca.crt": CA}
            assert cm["metadata"]["annotations"]["kubernetes.io/description"].startswith(
                "Contains a CA bundle"
            )
            await api.create("Namespace", {"metadata": {"name": "late"}}, None)
            await wait_for(api, lambda: api.get("ServiceAccount", "default", "late") is not None
                           and api.get("ConfigMap", "kube-root-ca.crt", "late") is not None)
            # deleted or edited: put back
            await api.client.delete(api.rt("ServiceAccount"), "shop", "default")
            edited = api.get("ConfigMap", "kube-root-ca.crt", "shop")
            assert edited is not None
            edited["data"] = {"ca.crt": "tampered"}
            await api.client.update(api.rt("ConfigMap"), edited)
            await wait_for(
                api,
                lambda: (
                    api.get("ServiceAccount", "default", "shop") is not None
                    and (api.get("ConfigMap", "kube-root-ca.crt", "shop") or {}).get("data") == {"ca.crt": CA}
                ),
            )
            nursery.cancel_scope.cancel()


async def test_a_namespace_being_deleted_is_not_furnished(autojump_clock: trio.testing.MockClock) -> None:
    api = await make_api()
    await api.create("Namespace", {"metadata": {"name": "going", "finalizers": ["test/hold"]}}, None)
    await api.client.delete(api.rt("Namespace"), None, "going")
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(ServiceAccountsController(api.client).run)
            await nursery.start(RootCAPublisher(api.client, CA).run)
            await wait_for(api, lambda: api.get("ServiceAccount", "default", "default") is not None)
            await trio.sleep(5)
            assert api.list("ServiceAccount", "going") == [] and api.list("ConfigMap", "going") == []
            nursery.cancel_scope.cancel()


async def test_a_token_secret_is_filled_and_goes_with_its_account(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = await make_api()
    issuer = TokenIssuer(new_signing_key())
    robot = await api.create("ServiceAccount", {"metadata": {"name": "robot"}})
    await api.create("Secret", TOKEN_SECRET)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(TokensController(api.client, issuer, CA).run)
            await wait_for(
                api, lambda: "token" in ((api.get("Secret", "robot-token") or {}).get("data") or {})
            )
            secret = api.get("Secret", "robot-token")
            assert secret is not None
            data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
            assert data["ca.crt"] == CA and data["namespace"] == "default"
            claims = jwt.decode(data["token"], options={"verify_signature": False})
            assert claims["iss"] == "kubernetes/serviceaccount"
            assert claims["sub"] == "system:serviceaccount:default:robot"
            assert claims["kubernetes.io/serviceaccount/service-account.uid"] == robot["metadata"]["uid"]
            assert claims["kubernetes.io/serviceaccount/secret.name"] == "robot-token"
            assert "exp" not in claims
            assert (
                secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"]
                == robot["metadata"]["uid"]
            )
            await api.client.delete(api.rt("ServiceAccount"), "default", "robot")
            await wait_for(api, lambda: api.get("Secret", "robot-token") is None)
            nursery.cancel_scope.cancel()


async def test_a_token_secret_for_no_account_is_deleted(autojump_clock: trio.testing.MockClock) -> None:
    api = await make_api()
    await api.create("Secret", TOKEN_SECRET)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(TokensController(api.client, TokenIssuer(new_signing_key()), CA).run)
            await wait_for(api, lambda: api.get("Secret", "robot-token") is None)
            nursery.cancel_scope.cancel()
