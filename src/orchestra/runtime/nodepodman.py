"""A joined node's own Podman: storage, run state, network configuration and pod network of its own,
so a node joined on a host that already runs another (the control plane's, or a second joined node)
shares nothing with it.

Owns: the files under <node state>/podman (containers.conf = the packaged one plus the node's tmp_dir,
network_config_dir and default network; storage.conf with graphroot <dir>/storage and runroot
<dir>/run), the environment every podman process of the node runs with (`NodePodman.env`), the
node's bridge network `orchestra` on its podCIDR (interface `orch<hash>`, created or re-created when
the podCIDR changed and no pod uses it), and loading an image from the host's Podman (`podman save`
| `podman load`) so a node on this host needs no registry.
Must not import: podman (podman-py), anything above the runtime layer.

    podman = NodePodman(state / "podman")
    await podman.ensure_network("10.244.1.0/24")
    socket = await nursery.start(PodmanService(podman.dir, env=podman.env).run)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import trio

from orchestra.runtime.base import RuntimeUnavailable
from orchestra.runtime.service import CONF_NAME, packaged_containers_conf

log = logging.getLogger(__name__)

NETWORK = "orchestra"
STORAGE_CONF = "storage.conf"


class NodePodman:
    def __init__(self, directory: Path, *, podman: str = "podman") -> None:
        self.dir = directory.resolve()
        self.podman = podman
        self.graphroot, self.runroot = self.dir / "storage", self.dir / "run"
        self.interface = "orch" + hashlib.sha256(str(self.dir).encode()).hexdigest()[:8]  # <= 15 chars
        self.env = self._write_config(default_network=False)

    def _write_config(self, *, default_network: bool) -> dict[str, str]:
        """The node's config files; its network becomes the default one only once it exists (before,
        Podman would make up a default network of that name on 10.88.0.0/16 and refuse to replace it)."""
        for d in (self.dir, self.graphroot, self.runroot, self.dir / "networks", self.dir / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
        conf = packaged_containers_conf().replace(
            "[engine]\n", f'[engine]\ntmp_dir = "{self.dir / "tmp"}"\n', 1)
        conf += f'\n[network]\nnetwork_config_dir = "{self.dir / "networks"}"\n'
        if default_network:
            conf += f'default_network = "{NETWORK}"\n'
        storage = (f'[storage]\ndriver = "overlay"\ngraphroot = "{self.graphroot}"\n'
                   f'runroot = "{self.runroot}"\n')
        for name, text in ((CONF_NAME, conf), (STORAGE_CONF, storage)):
            path = self.dir / name
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
        return {**os.environ, "CONTAINERS_CONF": str(self.dir / CONF_NAME),
                "CONTAINERS_STORAGE_CONF": str(self.dir / STORAGE_CONF)}

    def _exe(self) -> str:
        found = shutil.which(self.podman)
        if found is None:
            raise RuntimeUnavailable(f"podman not found on PATH ({self.podman!r}); install it "
                                     "(`apt-get install podman runc`)")
        return found

    async def _run(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
        result = await trio.run_process([self._exe(), *args], env=env or self.env, check=False,
                                        capture_stdout=True, capture_stderr=True)
        if check and result.returncode != 0:
            raise RuntimeUnavailable(f"`podman {' '.join(args)}` failed: "
                                     f"{result.stderr.decode(errors='replace').strip()}")
        return result.stdout.decode(errors="replace") if result.returncode == 0 else ""

    async def _exists(self, image: str, env: dict[str, str]) -> bool:
        found = await trio.run_process([self._exe(), "image", "exists", image], env=env, check=False)
        return found.returncode == 0

    async def ensure_network(self, pod_cidr: str) -> None:
        """The node's pod network on `pod_cidr` (pods get its addresses, the gateway its first)."""
        self._write_config(default_network=False)
        found = await self._run("network", "inspect", NETWORK, check=False)
        subnets = [s.get("subnet") for n in json.loads(found or "[]") for s in n.get("subnets") or []]
        if found and subnets != [pod_cidr]:
            log.warning("network %s is on %s, the node's podCIDR is %s: re-creating it",
                        NETWORK, subnets, pod_cidr)
            await self._run("network", "rm", NETWORK)
        if subnets != [pod_cidr]:
            self._write_network(pod_cidr)
        self.env = self._write_config(default_network=True)

    def _write_network(self, pod_cidr: str) -> None:
        """Netavark's network file, as `podman network create` writes it, with a bridge name of our
        own (Podman 4.3 has no --interface-name, and would pick podmanN, which the host may use later)."""
        net = ipaddress.IPv4Network(pod_cidr)
        doc = {"name": NETWORK, "id": hashlib.sha256(f"{self.dir}:{NETWORK}".encode()).hexdigest(),
               "driver": "bridge", "network_interface": self.interface,
               "created": dt.datetime.now(dt.UTC).isoformat(),  # wall-clock: a file timestamp
               "subnets": [{"subnet": str(net), "gateway": str(net.network_address + 1)}],
               "ipv6_enabled": False, "internal": False, "dns_enabled": False,
               "ipam_options": {"driver": "host-local"}}
        (self.dir / "networks" / f"{NETWORK}.json").write_text(json.dumps(doc, indent=5))

    async def load_host_image(self, image: str) -> bool:
        """Copy `image` from the host's Podman into the node's storage; False if the host has none."""
        if await self._exists(image, self.env):
            return True
        own = ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF")
        host_env = {k: v for k, v in self.env.items() if k not in own}
        if not await self._exists(image, host_env):
            return False
        with tempfile.TemporaryDirectory(prefix="orchestra-image-") as tmp:
            archive = str(Path(tmp) / "image.tar")
            await self._run("save", "--quiet", "-o", archive, image, env=host_env)
            await self._run("load", "--quiet", "-i", archive)
        return True
