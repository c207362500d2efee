"""Option and environment parsing of the `orchestra` commands (click's CliRunner, no server)."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import attrs
import platformdirs
import pytest
import trio
from click.testing import CliRunner

from orchestra.app.shutdown import Shutdown
from orchestra.cli.config import ClientConfig
from orchestra.cli.errors import CliError
from orchestra.cli.main import cli, parse_listen


@attrs.frozen
class FakeClusterConfig:
    state_dir: Path
    listen_host: str = "127.0.0.1"
    listen_port: int = 6443
    advertise_address: str | None = None
    tls_sans: tuple[str, ...] = ()
    store: str = "durable"
    cluster_token: str | None = None
    etcd_cafile: str | None = None
    etcd_certfile: str | None = None
    etcd_keyfile: str | None = None
    simulate_nodes: int = 0
    simulated_node_prefix: str = "sim-node-"
    nodes: int = 1
    node_link_cidr: str = "10.243.0.0/24"
    apply_paths: tuple[Path, ...] = ()
    dashboard: bool = False
    podman: bool = True
    network: bool = True
    timings: str = "default"
    stop_pods_on_exit: bool = False
    ingress_listen: tuple[str, int] | None = ("0.0.0.0", 80)
    ingress_tls_listen: tuple[str, int] | None = ("0.0.0.0", 443)
    ingress_optional: frozenset[str] = frozenset({"http", "https"})
    cluster_cidr: str = ""
    default_not_ready_toleration_seconds: int | None = None
    default_unreachable_toleration_seconds: int | None = None


@attrs.frozen
class FakeCluster:
    kubeconfig: Path
    url: str = "https://127.0.0.1:6443"


@pytest.fixture
def fake_app(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """A stand-in for orchestra.app that records the config `up` builds (the real one runs a cluster)."""
    started: list[Any] = []

    async def run_cluster(config: FakeClusterConfig, *, shutdown: Shutdown,
                          task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        started.append(config)
        if config.listen_port == 1:
            raise KeyboardInterrupt  # what trio.run raises on Ctrl-C
        task_status.started(FakeCluster(config.state_dir / "kubeconfig"))

    module = types.ModuleType("orchestra.app")
    module.ClusterConfig = FakeClusterConfig  # type: ignore[attr-defined]
    module.run_cluster = run_cluster  # type: ignore[attr-defined]
    module.Shutdown = Shutdown  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "orchestra.app", module)
    for var in (
        "STATE_DIR",
        "LISTEN",
        "MEMORY",
        "STORE",
        "SIMULATE_NODES",
        "APPLY",
        "NO_PODMAN",
        "DASHBOARD",
        "KUBECONFIG",
        "NO_NETWORK",
        "TIMINGS",
        "STOP_PODS",
        "INGRESS_LISTEN",
        "INGRESS_TLS_LISTEN",
        "CLUSTER_CIDR",
        "DEFAULT_NOT_READY_TOLERATION_SECONDS",
        "DEFAULT_UNREACHABLE_TOLERATION_SECONDS",
    ):
        monkeypatch.delenv(f"ORCHESTRA_{var}", raising=False)
    return started


def test_up_defaults(fake_app: list[Any]) -> None:
    result = CliRunner().invoke(cli, ["up"])
    assert result.exit_code == 0, result.output
    assert fake_app == [FakeClusterConfig(state_dir=Path(platformdirs.user_data_dir("orchestra")))]


def test_up_options(fake_app: list[Any], tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("")
    args = [
        "up",
        "--state-dir",
        str(tmp_path / "s"),
        "--listen",
        "0.0.0.0:7443",
        "--memory",
        "--simulate-nodes",
        "5",
        "--simulated-node-prefix",
        "sim-b-",
        "--apply",
        str(tmp_path / "a.yaml"),
        "--apply",
        str(tmp_path),
        "--no-podman",
        "--dashboard",
        "--cluster-cidr",
        "10.200.0.0/16",
        "--nodes",
        "3",
        "--node-link-cidr",
        "10.250.0.0/28",
        "--advertise-address",
        "192.0.2.7",
        "--tls-san",
        "API.example.com",
        "--tls-san",
        "192.0.2.10",
        "--tls-san",
        "*.lb.example.com",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert fake_app == [FakeClusterConfig(
        state_dir=tmp_path / "s", listen_host="0.0.0.0", listen_port=7443, store="memory", simulate_nodes=5,
        simulated_node_prefix="sim-b-", apply_paths=(tmp_path / "a.yaml", tmp_path), dashboard=True,
        podman=False,
        cluster_cidr="10.200.0.0/16", nodes=3, node_link_cidr="10.250.0.0/28", advertise_address="192.0.2.7",
        tls_sans=("api.example.com", "192.0.2.10", "*.lb.example.com"),
    )]


@pytest.mark.parametrize(("args", "message"), [
    (["--advertise-address", "nowhere"],
     "Invalid value for '--advertise-address': 'nowhere' is not an IP address"),
    (["--advertise-address", "0.0.0.0"], "is not an address nodes can reach"),
    (["--nodes", "0"], "Invalid value for '--nodes'"),
    (["--tls-san", "api_server.example"], "'--tls-san': 'api_server.example' is neither an IP"),
    (["--tls-san", ""], "Invalid value for '--tls-san'"),
])
def test_up_bad_node_options_are_usage_errors(fake_app: list[Any], args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["up", *args])
    assert result.exit_code != 0 and message in result.output, result.output
    assert fake_app == []


@pytest.mark.parametrize(("args", "env", "store"), [
    (["--store", "etcd://10.0.0.1:2379,10.0.0.2:2379"], {}, "etcd://10.0.0.1:2379,10.0.0.2:2379"),
    ([], {"ORCHESTRA_STORE": "etcd://10.0.0.1:2379,10.0.0.2:2379"}, "etcd://10.0.0.1:2379,10.0.0.2:2379"),
    (["--store", "etcd"], {}, "etcd"),  # the local etcd run_cluster starts under the state directory
    ([], {"ORCHESTRA_STORE": "etcd"}, "etcd"),
], ids=["option", "environment", "local-option", "local-environment"])
def test_up_store_etcd(fake_app: list[Any], tmp_path: Path, args: list[str], env: dict[str, str],
                       store: str) -> None:
    result = CliRunner().invoke(cli, ["up", "--state-dir", str(tmp_path), *args], env=env)
    assert result.exit_code == 0, result.output
    assert fake_app == [FakeClusterConfig(state_dir=tmp_path, store=store)]


@pytest.mark.parametrize(("args", "message"), [
    (["--store", "http://10.0.0.1:2379"], "Invalid value for '--store': not an etcd URL: 'http://10.0.0.1:2379'"),
    (["--store", "etcd://a:1", "--memory"], "--memory and --store exclude each other"),
    (["--store", "etcd", "--memory"], "--memory and --store exclude each other"),
    (["--store", "etcd3"], "Invalid value for '--store': not an etcd URL: 'etcd3'"),
], ids=["not-etcd", "with-memory", "local-with-memory", "not-local"])
def test_up_bad_store_is_a_usage_error(fake_app: list[Any], args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["up", *args])
    assert result.exit_code != 0 and message in result.output, result.output
    assert fake_app == []


def test_up_bad_cluster_cidr_is_a_usage_error_with_exit_1(fake_app: list[Any]) -> None:
    result = CliRunner().invoke(cli, ["up", "--cluster-cidr", "10.244.0.1/16"])
    assert result.exit_code == 1
    assert "Invalid value for '--cluster-cidr': invalid cluster CIDR '10.244.0.1/16'" in result.output
    assert fake_app == []


def test_up_environment(fake_app: list[Any], tmp_path: Path) -> None:
    env = {
        "ORCHESTRA_STATE_DIR": str(tmp_path),
        "ORCHESTRA_LISTEN": "127.0.0.1:9000",
        "ORCHESTRA_MEMORY": "1",
        "ORCHESTRA_SIMULATE_NODES": "2",
        "ORCHESTRA_NO_PODMAN": "true",
        "ORCHESTRA_APPLY": str(tmp_path),
        "ORCHESTRA_CLUSTER_CIDR": "10.200.0.0/16",
    }
    result = CliRunner().invoke(cli, ["up"], env=env)
    assert result.exit_code == 0, result.output
    assert fake_app == [
        FakeClusterConfig(
            state_dir=tmp_path,
            listen_port=9000,
            store="memory",
            simulate_nodes=2,
            apply_paths=(tmp_path,),
            podman=False,
            cluster_cidr="10.200.0.0/16",
        )
    ]


@pytest.mark.parametrize(("args", "env", "http", "https", "optional"), [
    (["--ingress-listen", "127.0.0.1:18080", "--ingress-tls-listen", "off"], {}, ("127.0.0.1", 18080), None,
     set()),
    (["--ingress-listen", "OFF"], {}, None, ("0.0.0.0", 443), {"https"}),
    ([], {"ORCHESTRA_INGRESS_LISTEN": "off", "ORCHESTRA_INGRESS_TLS_LISTEN": "[::1]:8443"}, None,
     ("::1", 8443), set()),
    (["--ingress-listen", "0.0.0.0:80"], {}, ("0.0.0.0", 80), ("0.0.0.0", 443), {"https"}),
], ids=["options", "off-any-case", "environment", "default-value-given"])
def test_up_ingress_listeners(fake_app: list[Any], tmp_path: Path, args: list[str], env: dict[str, str],
                              http: tuple[str, int] | None, https: tuple[str, int] | None,
                              optional: set[str]) -> None:
    """A listener given on the command line or in the environment is required (a port in use stops
    the start); one left at its default is optional (a port in use is a warning)."""
    result = CliRunner().invoke(cli, ["up", "--state-dir", str(tmp_path), *args], env=env)
    assert result.exit_code == 0, result.output
    assert fake_app == [FakeClusterConfig(state_dir=tmp_path, ingress_listen=http, ingress_tls_listen=https,
                                          ingress_optional=frozenset(optional))]


@pytest.mark.parametrize(("args", "env", "not_ready", "unreachable"), [
    (["--default-not-ready-toleration-seconds", "30", "--default-unreachable-toleration-seconds", "0"], {},
     30, 0),
    (["--timings", "fast", "--default-unreachable-toleration-seconds", "600"], {}, None, 600),
    ([], {"ORCHESTRA_DEFAULT_NOT_READY_TOLERATION_SECONDS": "20",
          "ORCHESTRA_DEFAULT_UNREACHABLE_TOLERATION_SECONDS": "40"}, 20, 40),
], ids=["options", "one-with-fast-timings", "environment"])
def test_up_default_toleration_seconds(fake_app: list[Any], tmp_path: Path, args: list[str],
                                       env: dict[str, str], not_ready: int | None,
                                       unreachable: int | None) -> None:
    """kube-apiserver's two flags; one not given stays None (the timings profile's value, see
    ClusterConfig.toleration_seconds)."""
    result = CliRunner().invoke(cli, ["up", "--state-dir", str(tmp_path), *args], env=env)
    assert result.exit_code == 0, result.output
    timings = "fast" if "fast" in args else "default"
    assert fake_app == [FakeClusterConfig(state_dir=tmp_path, timings=timings,
                                          default_not_ready_toleration_seconds=not_ready,
                                          default_unreachable_toleration_seconds=unreachable)]


def test_up_toleration_seconds_must_be_integers(fake_app: list[Any]) -> None:
    result = CliRunner().invoke(cli, ["up", "--default-not-ready-toleration-seconds", "5m"])
    assert result.exit_code == 1
    assert "Invalid value for '--default-not-ready-toleration-seconds'" in result.stderr
    assert fake_app == []


def test_up_help_says_what_fast_timings_do_to_tolerations() -> None:
    help_text = " ".join(CliRunner().invoke(cli, ["up", "--help"]).output.split())
    assert "--default-not-ready-toleration-seconds SECONDS" in help_text
    assert "--default-unreachable-toleration-seconds SECONDS" in help_text
    assert "pods evicted 30 s (not 300 s) after their node goes not-ready or unreachable" in help_text


def test_up_bad_ingress_listen_is_a_usage_error(fake_app: list[Any]) -> None:
    result = CliRunner().invoke(cli, ["up", "--ingress-listen", "nowhere"])
    assert result.exit_code == 1 and "Invalid value for '--ingress-listen'" in result.stderr
    assert fake_app == []


def test_up_ctrl_c_exits_cleanly(fake_app: list[Any]) -> None:
    result = CliRunner().invoke(cli, ["up", "--listen", "127.0.0.1:1"])
    assert result.exit_code == 0
    assert "Traceback" not in result.output
    assert "stopped" in result.stderr


@pytest.mark.parametrize("value", ["nope", "host:http", "1.2.3.4:99999"])
def test_up_bad_listen_is_a_usage_error_with_exit_1(fake_app: list[Any], value: str) -> None:
    result = CliRunner().invoke(cli, ["up", "--listen", value])
    assert result.exit_code == 1
    assert "Invalid value for '--listen'" in result.stderr
    assert fake_app == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [("127.0.0.1:6443", ("127.0.0.1", 6443)), (":80", ("127.0.0.1", 80)), ("[::1]:7000", ("::1", 7000))],
)
def test_parse_listen(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("command", ["up", "apply", "get", "describe", "delete", "version"])
def test_every_command_has_help_with_examples(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output


def test_unknown_option_exits_1() -> None:
    result = CliRunner().invoke(cli, ["get", "pods", "--bogus"])
    assert result.exit_code == 1
    assert "No such option '--bogus'" in result.stderr


def _kubeconfig(path: Path, server: str, namespace: str | None = None) -> Path:
    ns = f", namespace: {namespace}" if namespace else ""
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: '{server}'}}}}]\n"
        f"contexts: [{{name: c, context: {{cluster: k, user: u{ns}}}}}]\n"
        "users: [{name: u, user: {token: secret}}]\n"
    )
    return path


def test_kubeconfig_parsing(tmp_path: Path) -> None:
    cfg = ClientConfig.from_kubeconfig(_kubeconfig(tmp_path / "kc", "http://127.0.0.1:6443/", "shop"))
    assert (cfg.server, cfg.token, cfg.namespace) == ("http://127.0.0.1:6443", "secret", "shop")
    cfg = ClientConfig.from_kubeconfig(_kubeconfig(tmp_path / "kc2", "http://h:1"))
    assert cfg.namespace == "default"


def test_missing_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CliError, match=r"no kubeconfig at .*orchestra up"):
        ClientConfig.from_kubeconfig(tmp_path / "missing")
    result = CliRunner().invoke(cli, ["get", "pods"], env={"ORCHESTRA_STATE_DIR": str(tmp_path),
                                                           "ORCHESTRA_KUBECONFIG": None})
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: no kubeconfig at {tmp_path / 'kubeconfig'}")


def test_unreachable_server_is_reported_without_traceback(tmp_path: Path) -> None:
    kc = _kubeconfig(tmp_path / "kc", "http://127.0.0.1:1")
    result = CliRunner().invoke(cli, ["get", "pods"], env={"ORCHESTRA_KUBECONFIG": str(kc)})
    assert result.exit_code == 1
    assert (
        result.stderr
        == "error: The connection to the server 127.0.0.1:1 was refused - is `orchestra up` running?\n"
    )


def test_unknown_resource_type(tmp_path: Path) -> None:
    kc = _kubeconfig(tmp_path / "kc", "http://127.0.0.1:1")
    result = CliRunner().invoke(cli, ["get", "pdos", "--kubeconfig", str(kc)])
    assert result.exit_code == 1
    assert result.stderr == 'error: the server doesn\'t have a resource type "pdos"\n'


def test_apply_checks_every_document_before_contacting_the_server(tmp_path: Path) -> None:
    kc = _kubeconfig(tmp_path / "kc", "http://127.0.0.1:1")
    web = tmp_path / "web.yaml"
    web.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n"
                   "apiVersion: apps/v1\nkind: Deploymnt\nmetadata: {name: web}\n---\nkind: Pod\n")
    result = CliRunner().invoke(cli, ["apply", "-f", str(web), "--kubeconfig", str(kc)])
    assert result.exit_code == 1
    assert result.stderr == (
        f'error: {web}: document 2 (line 5): unknown kind "Deploymnt" for apiVersion "apps/v1"\n'
        f"error: {web}: document 3 (line 9): missing apiVersion\n"
    )


def test_apply_rejects_a_namespace_that_contradicts_the_flag(tmp_path: Path) -> None:
    kc = _kubeconfig(tmp_path / "kc", "http://127.0.0.1:1")
    cm = tmp_path / "cm.yaml"
    cm.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: shop}\n")
    result = CliRunner().invoke(cli, ["apply", "-f", str(cm), "-n", "other", "--kubeconfig", str(kc)])
    assert result.exit_code == 1
    assert (
        'the namespace from the provided object "shop" does not match the namespace "other"' in result.stderr
    )


def test_apply_from_stdin_reports_stdin(tmp_path: Path) -> None:
    kc = _kubeconfig(tmp_path / "kc", "http://127.0.0.1:1")
    result = CliRunner().invoke(cli, ["apply", "-f", "-", "--kubeconfig", str(kc)], input="kind: [\n")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: STDIN: document 1 (line ")


def test_watch_needs_a_single_type(tmp_path: Path) -> None:
    kc = _kubeconfig(tmp_path / "kc", "http://127.0.0.1:1")
    result = CliRunner().invoke(cli, ["get", "pods,svc", "-w", "--kubeconfig", str(kc)])
    assert result.exit_code == 1
    assert "watch is only supported on individual resources" in result.stderr


def test_delete_wait_accepts_kubectl_spelling(tmp_path: Path) -> None:
    kc = _kubeconfig(tmp_path / "kc", "http://127.0.0.1:1")
    result = CliRunner().invoke(cli, ["delete", "pod", "x", "--wait=false", "--kubeconfig", str(kc)])
    assert result.exit_code == 1
    assert "was refused" in result.stderr  # parsed fine; failed only at the (absent) server


def test_version_client_only() -> None:
    result = CliRunner().invoke(cli, ["version", "--client"])
    assert result.exit_code == 0
    assert result.output.startswith("Client Version: v")


def test_kubeconfig_tls_settings(tmp_path: Path) -> None:
    import base64

    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    doc = {
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [
            {
                "name": "k",
                "cluster": {
                    "server": "https://h:1",
                    "certificate-authority-data": base64.b64encode(pem.encode()).decode(),
                },
            }
        ],
        "users": [{"name": "u", "user": {"token": "t"}}],
    }
    assert ClientConfig.from_dict(doc).ca_pem == pem
    (tmp_path / "ca.crt").write_text(pem)
    doc["clusters"] = [{"name": "k", "cluster": {"server": "https://h:1", "certificate-authority": "ca.crt"}}]
    assert ClientConfig.from_dict(doc, path=tmp_path / "kubeconfig").ca_pem == pem
    doc["clusters"] = [{"name": "k", "cluster": {"server": "https://h:1", "insecure-skip-tls-verify": True}}]
    assert ClientConfig.from_dict(doc).ssl_context() is False
