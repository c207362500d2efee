"""The PV controller's binding rules, as kube's: a volume bound to a claim is never taken by another
claim naming it, a requested volume must fit the claim (class, size, volume mode, access modes),
misbound claims go Lost, and claims without a class get the default class retroactively."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from tests.controller.harness import Api, wait_for
from tests.reconcilers.test_volumes import controllers, phase, pv, pvc, storage_class
from tests.reconcilers.test_workloads_support import events, running

Obj = dict[str, Any]


def claim(name: str, volume: str | None = None, **kw: Any) -> Obj:
    obj = pvc(name, **kw)
    if volume is not None:
        obj["spec"]["volumeName"] = volume
    return obj


async def _bind_first(api: Api) -> Obj:
    await api.create("PersistentVolume", pv("pv1"), None)
    await api.create("PersistentVolumeClaim", claim("first", cls="manual"))
    await wait_for(api, lambda: phase(api, "PersistentVolumeClaim", "first") == "Bound")
    return api.get("PersistentVolumeClaim", "first") or {}


async def test_a_bound_volume_is_not_taken_by_a_claim_naming_it(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    with trio.fail_after(600):
        async with running(*controllers(tmp_path)) as api:
            first = await _bind_first(api)
            await api.create("PersistentVolumeClaim", claim("second", "pv1", cls="manual"))
            await wait_for(api, lambda: events(api, "FailedBinding", "second") != [])
            await trio.sleep(30)
            assert (
                events(api, "FailedBinding", "second")[0]
                == 'volume "pv1" already bound to a different claim.'
            )
            assert phase(api, "PersistentVolumeClaim", "second") == "Pending"
            assert phase(api, "PersistentVolumeClaim", "first") == "Bound"
            volume = api.get("PersistentVolume", "pv1", None) or {}
            assert volume["spec"]["claimRef"]["name"] == "first"
            assert volume["spec"]["claimRef"]["uid"] == first["metadata"]["uid"]
            assert volume["status"]["phase"] == "Bound"


MISMATCHES = [
    ("storage-class", {"cls": "fast"}, "storageClassName does not match"),
    ("too-small", {"cls": "manual", "size": "2Gi"}, "requested PV is too small"),
    ("access-mode", {"cls": "manual", "modes": ("ReadWriteMany",)}, "incompatible accessMode"),
]


@pytest.mark.parametrize(
    ("claim_args", "reason"), [c[1:] for c in MISMATCHES], ids=[c[0] for c in MISMATCHES]
)
async def test_a_requested_volume_must_fit_the_claim(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, claim_args: dict[str, Any], reason: str
) -> None:
    with trio.fail_after(600):
        async with running(*controllers(tmp_path)) as api:
            await api.create("PersistentVolume", pv("pv1"), None)
            await wait_for(api, lambda: phase(api, "PersistentVolume", "pv1") == "Available")
            await api.create("PersistentVolumeClaim", claim("data", "pv1", **claim_args))
            await wait_for(api, lambda: events(api, "VolumeMismatch", "data") != [])
            await trio.sleep(30)
            assert (
                events(api, "VolumeMismatch", "data")[0] == f'Cannot bind to requested volume "pv1": {reason}'
            )
            assert phase(api, "PersistentVolumeClaim", "data") == "Pending"
            volume = api.get("PersistentVolume", "pv1", None) or {}
            assert "claimRef" not in volume["spec"] and volume["status"]["phase"] == "Available"


async def test_a_requested_volume_that_fits_binds(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    with trio.fail_after(600):
        async with running(*controllers(tmp_path)) as api:
            await api.create("PersistentVolume", pv("pv1", size="2Gi"), None)
            await api.create("PersistentVolumeClaim", claim("data", "pv1", cls="manual"))
            await wait_for(api, lambda: phase(api, "PersistentVolumeClaim", "data") == "Bound")
            assert (api.get("PersistentVolume", "pv1", None) or {})["spec"]["claimRef"]["name"] == "data"


async def test_a_claim_whose_volume_went_to_another_claim_is_lost(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    with trio.fail_after(600):
        async with running(*controllers(tmp_path)) as api:
            await _bind_first(api)
            other = await api.create("PersistentVolumeClaim", claim("other", cls="none"))
            volume = api.get("PersistentVolume", "pv1", None) or {}
            volume["spec"]["claimRef"] = {
                "kind": "PersistentVolumeClaim",
                "namespace": "default",
                "name": "other",
                "uid": other["metadata"]["uid"],
                "apiVersion": "v1",
            }
            await api.client.update(api.rt("PersistentVolume"), volume)
            await wait_for(api, lambda: phase(api, "PersistentVolumeClaim", "first") == "Lost")
            assert events(api, "ClaimMisbound", "first") == [
                "Two claims are bound to the same volume, this one is bound incorrectly"
            ]
            first = api.get("PersistentVolumeClaim", "first") or {}
            assert "capacity" not in first["status"] and first["spec"]["volumeName"] == "pv1"
            # the volume, pre-bound to `other` by uid, binds it whatever its class (kube's pre-bound rule)
            await wait_for(api, lambda: phase(api, "PersistentVolumeClaim", "other") == "Bound")


async def test_a_claim_without_class_gets_the_default_class_later(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    with trio.fail_after(600):
        async with running(*controllers(tmp_path)) as api:
            await api.create("PersistentVolumeClaim", claim("data"))
            await wait_for(api, lambda: events(api, "FailedBinding", "data") != [])
            assert "storageClassName" not in (api.get("PersistentVolumeClaim", "data") or {})["spec"]
            await api.create("PersistentVolume", pv("pv1"), None)
            await trio.sleep(30)
            assert phase(api, "PersistentVolumeClaim", "data") == "Pending"  # class "" is not "manual"
            manual = storage_class("manual", default=True)
            manual["provisioner"] = "example.com/external"
            await api.create("StorageClass", manual, None)
            await wait_for(api, lambda: phase(api, "PersistentVolumeClaim", "data") == "Bound")
            bound = api.get("PersistentVolumeClaim", "data") or {}
            assert bound["spec"]["storageClassName"] == "manual" and bound["spec"]["volumeName"] == "pv1"
