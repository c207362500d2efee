"""Service environment variables match the kubelet's."""

from orchestra.net.service_env import env_for_pod

SVCS = [
    {
        "metadata": {"name": "web-app", "namespace": "shop"},
        "spec": {
            "clusterIP": "10.96.0.20",
            "ports": [
                {"name": "http", "port": 80, "protocol": "TCP"},
                {"name": "dns", "port": 53, "protocol": "UDP"},
            ],
        },
    },
    {
        "metadata": {"name": "headless", "namespace": "shop"},
        "spec": {"clusterIP": "None", "ports": [{"port": 1}]},
    },
    {
        "metadata": {"name": "other", "namespace": "elsewhere"},
        "spec": {"clusterIP": "10.96.0.30", "ports": [{"port": 9}]},
    },
    {
        "metadata": {"name": "kubernetes", "namespace": "default"},
        "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]},
    },
]


def test_env_for_pod() -> None:
    env = env_for_pod({"metadata": {"namespace": "shop"}, "spec": {}}, SVCS)
    assert env["WEB_APP_SERVICE_HOST"] == "10.96.0.20"
    assert env["WEB_APP_SERVICE_PORT"] == "80"
    assert env["WEB_APP_SERVICE_PORT_HTTP"] == "80"
    assert env["WEB_APP_PORT"] == "tcp://10.96.0.20:80"
    assert env["WEB_APP_PORT_53_UDP"] == "udp://10.96.0.20:53"
    assert env["WEB_APP_PORT_53_UDP_ADDR"] == "10.96.0.20"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert env["KUBERNETES_PORT_443_TCP_PROTO"] == "tcp"
    assert not any(k.startswith(("HEADLESS", "OTHER")) for k in env)


def test_service_links_disabled_keeps_kubernetes() -> None:
    env = env_for_pod({"metadata": {"namespace": "shop"}, "spec": {"enableServiceLinks": False}}, SVCS)
    assert "WEB_APP_SERVICE_HOST" not in env and env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
