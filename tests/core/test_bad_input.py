"""Bad manifests through the render path (rows B1, B2, B6, B7, B9): a real app directory is rendered the way
the engine renders it; each error names file:line(:col); one broken app never spoils its neighbour, and a
broken app yields no partial desired set."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.desired.render import RenderResult, render
from core.errors import ManifestError
from core.model import ResourceKey

GOOD = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\ndata:\n  x: '1'\n"


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write ``files`` (text or raw bytes) below ``root``."""
    for name, content in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return root


async def errors_of(root: Path, app: str) -> list[tuple[str, int | None, str]]:
    """(path, line, message) of every error rendering ``app``; fails if the render succeeds."""
    with pytest.raises(ManifestError) as caught:
        await render(root, app)
    errors = getattr(caught.value, "errors", None) or (caught.value,)
    return [(e.path, e.line, str(e)) for e in errors]


async def neighbour_renders(root: Path) -> RenderResult:
    """The good app next to the broken one renders untouched."""
    result = await render(root, "apps/good")
    assert [o["metadata"]["name"] for o in result.objects] == ["fine"]
    return result


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        pytest.param("apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: a\n", ":4:1:", "'\\t'", id="tab"),
        pytest.param("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: 'a\n", ":5:1:", "quoted scalar (line 4)",
                     id="unclosed-quote"),
        pytest.param("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n   labels: {}\n", ":5:10:",
                     "mapping values are not allowed", id="indentation"),
    ],
)
async def test_malformed_yaml_names_file_line_and_column(tmp_path: Path, text: str, where: str, words: str) -> None:
    """B1: tabs, an unclosed quote, bad indentation: one error, apps/bad/cm.yaml:line:col, the neighbour renders."""
    root = write(tmp_path, {"apps/bad/cm.yaml": text, "apps/good/cm.yaml": GOOD})
    ((path, _, message),) = await errors_of(root, "apps/bad")
    assert path == "apps/bad/cm.yaml"
    assert message.startswith("apps/bad/cm.yaml" + where), message
    assert words in message
    await neighbour_renders(root)


async def test_one_bad_document_in_a_stream_fails_the_app_with_nothing_partial(tmp_path: Path) -> None:
    """B2: documents 1 and 3 are fine, document 2 is not: the app fails naming document 2's line, and no
    object of the file is returned (a partial desired set would make 1 and 3's siblings prune candidates)."""
    stream = (GOOD.replace("fine", "one") + "---\n" + "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [two\n"
              + "---\n" + GOOD.replace("fine", "three"))
    root = write(tmp_path, {"apps/bad/all.yaml": stream, "apps/bad/other.yaml": GOOD.replace("fine", "other"),
                            "apps/good/cm.yaml": GOOD})
    ((path, line, message),) = await errors_of(root, "apps/bad")
    assert (path, line) == ("apps/bad/all.yaml", 11)
    assert message.startswith("apps/bad/all.yaml:11:")
    await neighbour_renders(root)


async def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    """B6: a duplicate key (which kubectl's decoder would refuse too) is an error naming both lines."""
    root = write(tmp_path, {"apps/bad/cm.yaml": GOOD + "  x: '2'\n", "apps/good/cm.yaml": GOOD})
    ((_, line, message),) = await errors_of(root, "apps/bad")
    assert line == 7
    assert message.startswith("apps/bad/cm.yaml:7:3:") and "duplicate key 'x' (first defined at line 6)" in message
    await neighbour_renders(root)


@pytest.mark.parametrize(
    ("value", "loaded"),
    [
        pytest.param("on", True, id="on"),
        pytest.param("yes", True, id="yes"),
        pytest.param("0755", 493, id="octal"),
        pytest.param("1e3", 1000.0, id="exponent"),
    ],
)
async def test_yaml_1_1_scalars_load_as_the_api_server_reads_them_with_a_warning(
    tmp_path: Path, value: str, loaded: object
) -> None:
    """B6: a YAML 1.1 scalar in a spec is compared as kubectl sends it, and the render warns, naming the
    file, the line and the field."""
    text = f"apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  flag: {value}\n"
    root = write(tmp_path, {"apps/w/w.yaml": text})
    result = await render(root, "apps/w")
    assert result.objects[0]["spec"]["flag"] == loaded
    if isinstance(loaded, bool):
        assert any(w.startswith("apps/w/w.yaml:") and "line 6" in w and "spec.flag" in w for w in result.warnings), \
            result.warnings


@pytest.mark.parametrize("value", ["yes", "on", "0755", "1e3"])
async def test_yaml_1_1_scalars_in_configmap_data_are_errors(tmp_path: Path, value: str) -> None:
    """B6: where the API server wants a string (ConfigMap data) an unquoted YAML 1.1 scalar is refused,
    with the quoted form to use."""
    root = write(tmp_path, {"apps/bad/cm.yaml": GOOD.replace("'1'", value), "apps/good/cm.yaml": GOOD})
    ((_, line, message),) = await errors_of(root, "apps/bad")
    assert line == 6 and "data.x" in message and f'"{value}"' in message, message
    await neighbour_renders(root)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        pytest.param("kind: ConfigMap\nmetadata: {name: a}\n", "apiVersion is missing", id="no-apiVersion"),
        pytest.param("apiVersion: v1\nmetadata: {name: a}\n", "kind is missing", id="no-kind"),
        pytest.param("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "metadata.name is missing", id="no-name"),
        pytest.param("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ../etc}\n", "not a valid object name",
                     id="path-name"),
        pytest.param("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: Team_A}\n",
                     "metadata.namespace 'Team_A' is not a valid namespace name", id="bad-namespace"),
        pytest.param("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: " + "n" * 64 + "}\n",
                     "is not a valid namespace name", id="long-namespace"),
        pytest.param("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Web-Config}\n",
                     "metadata.name 'Web-Config' is not a valid ConfigMap name: it must be a DNS subdomain",
                     id="upper-case-configmap"),
        pytest.param("apiVersion: v1\nkind: Service\nmetadata: {name: 1web}\n",
                     "metadata.name '1web' is not a valid Service name: it must be a DNS-1035 label",
                     id="service-starting-with-a-digit"),
        pytest.param("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web_api}\n",
                     "is not a valid Deployment name", id="underscore-deployment"),
    ],
)
async def test_objects_without_identity_are_per_object_errors(tmp_path: Path, text: str, words: str) -> None:
    """B7: missing apiVersion, kind or name, a name that is not a path segment, a namespace that is not a
    DNS label: an error for that object, with its file and line; the good object of the same file is not
    returned on its own."""
    root = write(tmp_path, {"apps/bad/cm.yaml": GOOD + "---\n" + text, "apps/good/cm.yaml": GOOD})
    ((path, line, message),) = await errors_of(root, "apps/bad")
    assert (path, line) == ("apps/bad/cm.yaml", 8)
    assert words in message, message
    await neighbour_renders(root)


async def test_names_only_other_kinds_allow_still_load(tmp_path: Path) -> None:
    """B7: kinds without a DNS rule keep any path-segment name (RBAC roles with ':' and capitals, custom
    resources), and the built-in kinds keep every name their rule allows (dots in a ConfigMap's name)."""
    docs = (
        "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: 'system:Web-Reader'}\n"
        "---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: Big_Widget}\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: web.config-1}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: web-1}\n"
    )
    root = write(tmp_path, {"apps/ok/objects.yaml": docs})
    result = await render(root, "apps/ok")
    assert len(result.objects) == 4


async def test_valid_namespaces_still_load(tmp_path: Path) -> None:
    """B7: the namespace check keeps every DNS label (and an empty namespace, which means the app's)."""
    docs = "".join(
        f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a{i}, namespace: '{ns}'}}\n"
        for i, ns in enumerate(["team-a", "a", "0", "n" * 63, ""])
    )
    root = write(tmp_path, {"apps/ok/cm.yaml": docs})
    result = await render(root, "apps/ok")
    assert len(result.objects) == 5


async def test_non_utf8_bytes_name_the_file_and_position(tmp_path: Path) -> None:
    """B9: Latin-1 bytes in a manifest: an error naming the file, line, column and UTF-8; no crash."""
    root = write(tmp_path, {"apps/bad/cm.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: caf\xe9\n",
                            "apps/good/cm.yaml": GOOD})
    ((path, line, message),) = await errors_of(root, "apps/bad")
    assert (path, line) == ("apps/bad/cm.yaml", 4)
    assert message.startswith("apps/bad/cm.yaml:4:") and "UTF-8" in message, message
    await neighbour_renders(root)


async def test_nul_byte_names_the_file_and_position(tmp_path: Path) -> None:
    """B9: a NUL byte (a binary file with a .yaml name) is an error with file and line, not a crash."""
    root = write(tmp_path, {"apps/bad/cm.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\x00\n"})
    ((path, line, message),) = await errors_of(root, "apps/bad")
    assert (path, line) == ("apps/bad/cm.yaml", 4), message
    assert message.startswith("apps/bad/cm.yaml:4:")


async def test_bom_crlf_and_cr_only_files_render_like_lf(tmp_path: Path) -> None:
    """B9: a UTF-8 BOM with CRLF line ends, and old-Mac CR-only line ends, give the same objects (and the
    same digest) as the plain LF file."""
    lf = GOOD
    root = write(tmp_path, {
        "apps/lf/cm.yaml": lf,
        "apps/crlf/cm.yaml": ("\ufeff" + lf).replace("\n", "\r\n").encode(),
        "apps/cr/cm.yaml": lf.replace("\n", "\r").encode(),
    })
    plain = await render(root, "apps/lf")
    for app in ("apps/crlf", "apps/cr"):
        other = await render(root, app)
        assert other.objects == plain.objects, app
    key = ResourceKey("", "ConfigMap", "", "fine")
    assert key.name == plain.objects[0]["metadata"]["name"]


def annotated(size: int) -> str:
    """A ConfigMap whose one annotation has key plus value of exactly ``size`` bytes."""
    key = "example.com/blob"
    return ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\n  annotations:\n"
            f"    {key}: '{'a' * (size - len(key))}'\n")


async def test_annotations_over_the_api_server_limit_are_refused(tmp_path: Path) -> None:
    """B5: annotations of 262,145 bytes (keys plus values), one over the API server's limit, are an error
    at the annotations' line; exactly 262,144 bytes load."""
    root = write(tmp_path, {"apps/bad/cm.yaml": annotated(256 * 1024 + 1), "apps/edge/cm.yaml": annotated(256 * 1024),
                            "apps/good/cm.yaml": GOOD})
    ((path, line, message),) = await errors_of(root, "apps/bad")
    assert (path, line) == ("apps/bad/cm.yaml", 6)
    assert "262145 bytes" in message and "262144-byte limit" in message, message
    assert len((await render(root, "apps/edge")).objects) == 1
    await neighbour_renders(root)


async def test_object_over_the_etcd_request_limit_is_flagged(tmp_path: Path) -> None:
    """B5: a 1.6 MB custom resource renders (the API server has the last word) with a warning naming its
    size and the 1.5 MiB limit; a normal object gets no such warning."""
    blob = "b" * 1_600_000
    text = f"apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: huge\nspec:\n  blob: '{blob}'\n"
    root = write(tmp_path, {"apps/huge/w.yaml": text, "apps/good/cm.yaml": GOOD})
    result = await render(root, "apps/huge")
    assert len(result.objects) == 1
    assert any(w.startswith("apps/huge/w.yaml:") and "1572864-byte (1.5 MiB)" in w for w in result.warnings), \
        result.warnings
    assert (await neighbour_renders(root)).warnings == ()
