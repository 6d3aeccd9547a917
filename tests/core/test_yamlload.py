"""Safe YAML loading of manifests: budgets, go-yaml-compatible types, per-document errors with lines."""

from __future__ import annotations

import time

import pytest

from core.desired.yamlload import Budget, LoadedDoc, ManifestErrors, compose_single, load_documents
from core.errors import ManifestError

ALIAS_BOMB = b"""a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
"""


def cm(name: str, extra: str = "") -> str:
    """A minimal ConfigMap document."""
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{extra}"


def errors_of(data: bytes | str, path: str = "m.yaml") -> tuple[ManifestError, ...]:
    """The individual errors loading ``data`` raises."""
    with pytest.raises(ManifestErrors) as caught:
        load_documents(data, path)
    return caught.value.errors


def test_alias_bomb_is_rejected_fast() -> None:
    """A ~300-byte billion-laughs bomb is a ManifestError within milliseconds, not a hang."""
    assert len(ALIAS_BOMB) < 300
    started = time.perf_counter()
    (error,) = errors_of(ALIAS_BOMB, "bomb.yaml")
    assert time.perf_counter() - started < 0.5
    assert "alias" in error.message and error.line is not None
    assert error.message.startswith("bomb.yaml:")


def test_a_few_aliases_are_fine() -> None:
    """Ordinary anchors and merge keys load and expand."""
    text = cm("a", "data: &d {x: '1'}\nbinaryData: {}\n") + "---\n" + cm("b", "extra:\n  <<: {w: 2}\n  z: 3\n")
    docs = load_documents(text, "m.yaml")
    assert docs[1].obj["extra"] == {"w": 2, "z": 3}


def test_recursive_alias_is_rejected() -> None:
    """An alias to the node that contains it is an error, not a cyclic value."""
    (error,) = errors_of("a: &x [1, *x]\n")
    assert "recursive" in error.message


def test_timestamps_stay_strings() -> None:
    """``released: 2024-01-01`` is a string, as go-yaml v2 decodes it."""
    (doc,) = load_documents(cm("a", "data:\n  released: 2024-01-01\n  at: 2024-01-01T10:00:00Z\n"), "m.yaml")
    assert doc.obj["data"] == {"released": "2024-01-01", "at": "2024-01-01T10:00:00Z"}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param("on", True, id="on-is-true"),
        pytest.param("y", True, id="y-is-true"),
        pytest.param("1e3", 1000.0, id="exponent-without-dot"),
        pytest.param("0755", 493, id="octal"),
        pytest.param("1:20", "1:20", id="no-base-60"),
        pytest.param("1.10", 1.1, id="float"),
    ],
)
def test_implicit_types_follow_go_yaml(text: str, value: object) -> None:
    """Plain scalars resolve as kubectl (go-yaml v2) resolves them."""
    (doc,) = load_documents(cm("a", f"spec:\n  v: {text}\n"), "m.yaml")
    assert doc.obj["spec"]["v"] == value


def test_boolean_keys_become_json_keys() -> None:
    """A key go-yaml reads as a boolean (``y``) becomes ``"true"``, as kubectl's YAML-to-JSON does."""
    (doc,) = load_documents(cm("a", "spec: {y: 1}\n"), "m.yaml")
    assert doc.obj["spec"] == {"true": 1}


def test_surprising_coercions_are_warned() -> None:
    """``on`` and ``1.10`` outside labels load, with a warning naming line and field."""
    (doc,) = load_documents(cm("a", "spec:\n  enabled: on\n  version: 1.10\n"), "m.yaml")
    assert any("line 6" in w and "spec.enabled" in w for w in doc.warnings)
    assert any("1.10" in w and "1.1" in w for w in doc.warnings)


def test_duplicate_keys_are_errors_with_line() -> None:
    """A duplicate mapping key names both lines."""
    (error,) = errors_of(cm("a", "data:\n  x: '1'\n  x: '2'\n"))
    assert error.line == 7
    assert "duplicate key 'x'" in error.message and "line 6" in error.message


def test_deep_nesting_is_an_error_not_a_recursion_error() -> None:
    """10,000 nested flow sequences stop at the depth limit."""
    text = "a: " + "[" * 10_000 + "]" * 10_000 + "\n"
    (error,) = errors_of(text)
    assert "nested deeper" in error.message


def test_size_budget() -> None:
    """Input over the size budget is refused before parsing."""
    with pytest.raises(ManifestError, match="limit"):
        load_documents(cm("a") * 10, "m.yaml", budget=Budget(max_bytes=100))


def test_bad_utf8_names_the_path_and_position() -> None:
    """Non-UTF-8 bytes are an error naming the file, line and column."""
    (error,) = errors_of(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \xff}\n", "apps/web/cm.yaml")
    assert error.message.startswith("apps/web/cm.yaml:3:18:")
    assert "UTF-8" in error.message


def test_bom_and_crlf_are_handled() -> None:
    """A UTF-8 BOM and CRLF line ends load like plain LF text."""
    data = ("\ufeff" + cm("a", "data: {x: 'y'}\n")).replace("\n", "\r\n").encode()
    (doc,) = load_documents(data, "m.yaml")
    assert doc.obj["metadata"]["name"] == "a"
    assert doc.obj["data"] == {"x": "y"}


def test_utf16_with_bom() -> None:
    """UTF-16 with a BOM (allowed by YAML) decodes."""
    (doc,) = load_documents(cm("a").encode("utf-16"), "m.yaml")
    assert doc.obj["kind"] == "ConfigMap"


def test_per_document_errors_carry_line_and_column() -> None:
    """Each bad document of a stream gets its own error with its absolute line; good ones are not returned."""
    text = cm("ok") + "---\n" + "bad: [unclosed\n" + "---\n" + cm("ok2") + "---\n" + "x:\n\ty: 1\n"
    errors = errors_of(text, "multi.yaml")
    assert [e.line for e in errors] == [7, 14]
    assert errors[0].message.startswith("multi.yaml:7:") and "(line 6)" in errors[0].message
    assert "multi.yaml:14:1" in errors[1].message


def test_documents_start_lines_and_empty_documents_dropped() -> None:
    """Empty and null documents are dropped; each object reports its starting line."""
    text = "---\n# nothing\n---\nnull\n---\n" + cm("a") + "---\n{}\n---\n" + cm("b")
    docs = load_documents(text, "m.yaml")
    assert [(d.obj["metadata"]["name"], d.line) for d in docs] == [("a", 6), ("b", 13)]
    assert all(isinstance(d, LoadedDoc) and d.path == "m.yaml" for d in docs)


def test_list_kinds_are_flattened() -> None:
    """``kind: List`` (and ``*List``) yields its items, each with its own line."""
    text = (
        "apiVersion: v1\nkind: List\nitems:\n"
        "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n"
        "- apiVersion: v1\n  kind: Secret\n  metadata: {name: b}\n"
    )
    docs = load_documents(text, "m.yaml")
    assert [(d.obj["kind"], d.line) for d in docs] == [("ConfigMap", 4), ("Secret", 7)]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("kind: ConfigMap\nmetadata: {name: a}\n", "apiVersion", id="no-apiVersion"),
        pytest.param("apiVersion: v1\nmetadata: {name: a}\n", "kind", id="no-kind"),
        pytest.param("apiVersion: v1\nkind: ConfigMap\n", "metadata", id="no-metadata"),
        pytest.param("apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: x}\n", "metadata.name", id="no-name"),
        pytest.param("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a/b}\n", "not a valid", id="bad-name"),
        pytest.param("- 1\n- 2\n", "a list", id="not-a-mapping"),
    ],
)
def test_required_fields(text: str, fragment: str) -> None:
    """apiVersion, kind and metadata.name are required."""
    (error,) = errors_of(text)
    assert fragment in error.message


def test_generate_name_only_for_hooks() -> None:
    """``generateName`` without ``name`` is accepted on hook objects only."""
    hook = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: m-\n  annotations:\n    argocd.argoproj.io/hook: PreSync\n"
    assert load_documents(hook, "m.yaml")[0].obj["metadata"]["generateName"] == "m-"
    errors_of("apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: m-\n")


def test_non_string_label_values_are_errors_with_the_1_10_warning() -> None:
    """A label ``version: 1.10`` is refused, saying it would become 1.1, and how to quote it."""
    errors = errors_of(cm("a", "  labels:\n    version: 1.10\n    enabled: true\n"))
    assert [e.line for e in errors] == [6, 7]
    assert "1.10 is read as float 1.1" in errors[0].message and '"1.10"' in errors[0].message
    assert "metadata.labels.enabled" in errors[1].message


def test_non_string_annotations_and_template_labels() -> None:
    """Annotations, pod-template labels and ConfigMap data must be strings too."""
    text = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: w\n  annotations: {replicas: 3}\n"
        "spec:\n  template:\n    metadata:\n      labels: {tier: on}\n"
        "---\n" + cm("c", "data:\n  port: 8080\n")
    )
    fields = [e.message for e in errors_of(text)]
    assert any("metadata.annotations.replicas" in m for m in fields)
    assert any("spec.template.metadata.labels.tier" in m for m in fields)
    assert any("data.port" in m for m in fields)


def test_quoted_labels_load() -> None:
    """Quoted label values are plain strings."""
    (doc,) = load_documents(cm("a", '  labels: {version: "1.10", enabled: "true"}\n'), "m.yaml")
    assert doc.obj["metadata"]["labels"] == {"version": "1.10", "enabled": "true"}


def test_json_files_load() -> None:
    """A JSON manifest is YAML too."""
    (doc,) = load_documents(b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}', "m.json")
    assert doc.obj["metadata"]["name"] == "j"


def test_infinity_and_custom_tags_are_refused() -> None:
    """Values JSON cannot carry (``.inf``) and unknown tags are errors."""
    assert "JSON" in errors_of(cm("a", "spec: {v: .inf}\n"))[0].message
    assert "tag" in errors_of(cm("a", "spec: {v: !Ref x}\n"))[0].message


def test_compose_single_rejects_several_documents() -> None:
    """A single-document file with two documents is an error with the second's line."""
    with pytest.raises(ManifestError) as caught:
        compose_single("a: 1\n---\nb: 2\n", "f.yaml")
    assert caught.value.line == 3
