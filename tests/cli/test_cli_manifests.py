"""Manifest loading and the client-side checks `orchestra apply` runs before any request."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orchestra.cli.errors import CliError
from orchestra.cli.manifests import ManifestError, check_documents, expand_paths, load_paths, load_text

WEB = """\
# a web app
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  paused: false
---
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
  - port: 80
    targetPort: 8080
"""


def test_multi_document_yaml_keeps_index_and_line_of_each_document() -> None:
    docs = load_text(WEB, "web.yaml")
    assert [(d.index, d.line, d.kind, d.name) for d in docs] == [
        (1, 2, "Namespace", "shop"),
        (2, 7, "Deployment", "web"),
        (3, 16, "Service", "web"),
    ]
    assert docs[1].body["spec"] == {"replicas": 2, "paused": False}
    assert type(docs[1].body["spec"]["replicas"]) is int
    assert docs[2].body["spec"]["ports"] == [{"port": 80, "targetPort": 8080}]


def test_malformed_yaml_names_file_document_and_line() -> None:
    text = (
        "apiVersion: v1\nkind: Pod\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n    labels: x: y\n"
    )
    with pytest.raises(ManifestError) as info:
        load_text(text, "bad.yaml")
    assert info.value.format_message() == (
        "error: bad.yaml: document 2 (line 8): invalid YAML: mapping values are not allowed here"
    )


def test_unclosed_flow_sequence_is_reported_with_its_line() -> None:
    with pytest.raises(ManifestError) as info:
        load_text("apiVersion: v1\nkind: Pod\nspec:\n  args: [a, b\n", "p.yaml")
    assert info.value.errors[0].startswith("p.yaml: document 1 (line ")
    assert "invalid YAML" in info.value.errors[0]


def test_invalid_json_file_reports_line(tmp_path: Path) -> None:
    f = tmp_path / "pod.json"
    f.write_text('{\n  "apiVersion": "v1",\n  "kind": "Pod",,\n}\n')
    with pytest.raises(ManifestError) as info:
        load_paths([str(f)])
    assert info.value.errors == [
        f"{f}: document 1 (line 3): invalid JSON: Expecting property name enclosed in double quotes"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param(
            "apiVersion: apps/v1\nkind: Deploymnt\nmetadata: {name: web}\n",
            'unknown kind "Deploymnt" for apiVersion "apps/v1"',
            id="unknown-kind",
        ),
        pytest.param(
            "apiVersion: v1\nkind: Deployment\nmetadata: {name: web}\n",
            'unknown kind "Deployment" for apiVersion "v1" (did you mean apiVersion "apps/v1"?)',
            id="kind-in-other-group",
        ),
        pytest.param("apiVersion: v1\nmetadata: {name: web}\n", "missing kind", id="missing-kind"),
        pytest.param("kind: Pod\nmetadata: {name: web}\n", "missing apiVersion", id="missing-apiversion"),
        pytest.param("metadata: {name: web}\n", "missing apiVersion and kind", id="missing-both"),
        pytest.param("apiVersion: v1\nkind: Pod\n", "Pod: missing metadata.name", id="missing-name"),
        pytest.param("- a\n- b\n", "expected an object (a YAML mapping), got a list", id="not-a-mapping"),
    ],
)
def test_check_documents_errors(text: str, problem: str) -> None:
    docs = load_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\n" + text, "x.yaml")
    with pytest.raises(ManifestError) as info:
        check_documents(docs)
    assert info.value.errors == [f"x.yaml: document 2 (line 5): {problem}"]


def test_every_problem_is_reported_at_once() -> None:
    docs = load_text("kind: Pod\n---\napiVersion: apps/v1\nkind: Deploymnt\nmetadata: {name: a}\n", "m.yaml")
    with pytest.raises(ManifestError) as info:
        check_documents(docs)
    assert info.value.format_message() == (
        "error: m.yaml: document 1 (line 1): missing apiVersion\n"
        'error: m.yaml: document 2 (line 3): unknown kind "Deploymnt" for apiVersion "apps/v1"'
    )


def test_check_resolves_resource_types() -> None:
    checked = check_documents(load_text(WEB, "web.yaml"))
    assert [(c.rt.group, c.rt.plural) for c in checked] == [
        ("", "namespaces"),
        ("apps", "deployments"),
        ("", "services"),
    ]


def test_list_documents_expand_to_their_items() -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"
    docs = load_text(text, "l.yaml")
    assert [(d.kind, d.name, d.index) for d in docs] == [("ConfigMap", "a", 1)]


def test_directory_expands_to_sorted_manifest_files(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", "c.json", "notes.txt"):
        (tmp_path / name).write_text("{}")
    assert expand_paths([str(tmp_path)]) == [str(tmp_path / n) for n in ("a.yml", "b.yaml", "c.json")]


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="does not exist"):
        expand_paths([str(tmp_path / "nope.yaml")])


def test_errors_from_several_files_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a: [\n")
    (tmp_path / "b.yaml").write_text("b: c: d\n")
    with pytest.raises(ManifestError) as info:
        load_paths([str(tmp_path)])
    assert [e.split(":")[0] for e in info.value.errors] == [
        str(tmp_path / "a.yaml"),
        str(tmp_path / "b.yaml"),
    ]


def _laughs(levels: int, fanout: int = 10, indent: str = "") -> str:
    """The billion-laughs document: each anchor lists the previous one `fanout` times."""
    lines = [f"{indent}l0: &l0 [{', '.join(['lol'] * fanout)}]"]
    lines += [f"{indent}l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fanout)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\n"
BOMB_MANIFEST = CONFIG_MAP + "metadata:\n  name: bomb\nlaughs:\n" + _laughs(9, indent="  ")


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (BOMB_MANIFEST, 8, "document contains excessive aliasing"),  # at l2: past 1,000 decodes, 99% aliases
        (CONFIG_MAP + "metadata: {name: r}\ndata: &d {a: *d}\n", 4, "anchor 'd' value contains itself"),
        (CONFIG_MAP + "metadata: {name: deep}\nx: " + "[" * 5000 + "]" * 5000 + "\n", 4,
         "exceeded max depth of 200"),
        (CONFIG_MAP + "metadata: {name: big}\nx: &x " + "y" * 100_000 + "\nys: ["
         + ", ".join(["*x"] * 40) + "]\n", 5, "the document expands to more than 3145728 bytes"),
    ],
    ids=["alias-bomb", "recursive-anchor", "deep", "expands-past-3MiB"],
)
def test_yaml_over_the_server_limits_is_refused_quickly_with_file_and_line(
        tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: fine\n---\n" + text)
    start = time.monotonic()
    with pytest.raises(ManifestError) as info:
        load_paths([str(path)])
    assert time.monotonic() - start < 5
    assert info.value.errors == [f"{path}: document 2 (line {line + 5}): invalid YAML: {problem}"]


def test_deep_json_manifest_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"apiVersion": "v1", "kind": "ConfigMap",\n"metadata": {"name": "d"},\n"x": '
                    + "[" * 3000 + "]" * 3000 + "}")
    with pytest.raises(ManifestError) as info:
        load_paths([str(path)])
    assert info.value.errors == [f"{path}: document 1 (line 3): invalid JSON: exceeded max depth of 200"]


def test_aliases_within_the_limits_still_load() -> None:
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n  labels: &l {app: web}\n"
            "data:\n  a: &a hello\n  b: *a\nextra:\n  labels: *l\n" + _laughs(3, indent="  "))
    [doc] = load_text(text, "ok.yaml")
    assert doc.body["data"] == {"a": "hello", "b": "hello"}
    assert doc.body["extra"]["labels"] == {"app": "web"}
    assert doc.body["extra"]["l2"] == [[["lol"] * 10] * 10] * 10  # 1,000 scalars: aliases in moderation
