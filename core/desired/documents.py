"""Checks that turn composed YAML documents into Kubernetes objects, with the line of every problem.

Role: drop empty documents, flatten ``List`` kinds, require ``apiVersion``/``kind``/``metadata.name``,
reject non-string labels and annotations (kubectl rejects them too), and warn about scalars YAML 1.1
reads differently from how they look. Works on PyYAML nodes, so messages can quote the original text
(``1.10``, which becomes the float 1.1).

Constraint: pure; no I/O, no knowledge of where the documents came from beyond their path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from core.errors import ManifestError

STR_TAG = "tag:yaml.org,2002:str"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_HOOK_ANNOTATIONS = ("fleetdeck.io/hook", "argocd.argoproj.io/hook", "helm.sh/hook")
_STRING_MAPS = ("labels", "annotations")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
"""A namespace name (RFC 1123 label), as the API server validates it for every namespaced object."""
_DNS_SUBDOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?")
_DNS_1035_LABEL = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")
_SUBDOMAIN = ("a DNS subdomain: lowercase letters, digits, '-' and '.', at most 253 characters, starting and "
              "ending with a letter or digit", _DNS_SUBDOMAIN)
_NAME_RULES: dict[tuple[str, str], tuple[str, re.Pattern[str]]] = {
    **{("", kind): _SUBDOMAIN for kind in ("ConfigMap", "Secret", "Pod", "ServiceAccount", "PersistentVolumeClaim",
                                           "PersistentVolume", "LimitRange", "ResourceQuota", "Endpoints")},
    **{("apps", kind): _SUBDOMAIN for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")},
    **{("batch", kind): _SUBDOMAIN for kind in ("Job", "CronJob")},
    ("networking.k8s.io", "Ingress"): _SUBDOMAIN,
    ("networking.k8s.io", "NetworkPolicy"): _SUBDOMAIN,
    ("policy", "PodDisruptionBudget"): _SUBDOMAIN,
    ("autoscaling", "HorizontalPodAutoscaler"): _SUBDOMAIN,
    ("", "Service"): ("a DNS-1035 label: lowercase letters, digits and '-', at most 63 characters, starting with "
                      "a letter and ending with a letter or digit", _DNS_1035_LABEL),
    ("", "Namespace"): ("a DNS label: lowercase letters, digits and '-', at most 63 characters, starting and "
                        "ending with a letter or digit", _DNS_LABEL),
}
"""Name rules of built-in kinds the API server would refuse an object for (other kinds, RBAC and custom
resources included, only need a path segment): checked before anything is sent."""
_STRING_DATA_KINDS = {"ConfigMap": ("data", "binaryData"), "Secret": ("data", "stringData")}
MAX_WARNINGS = 20
MAX_ANNOTATIONS_BYTES = 256 * 1024
"""The API server's limit on an object's annotations, keys and values together (TotalAnnotationSizeLimitB)."""
MAX_OBJECT_BYTES = 3 * 512 * 1024
"""etcd's default request size limit (``--max-request-bytes``, 1.5 MiB): a larger object is refused."""


@dataclass(frozen=True, slots=True)
class LoadedDoc:
    """One Kubernetes object read from a file, with where it starts."""

    obj: dict[str, Any]
    path: str
    line: int
    """1-based line where the object starts."""
    warnings: tuple[str, ...] = ()
    """Values YAML 1.1 reads differently from how they look (``on`` → true, ``1.10`` → 1.1)."""


class DocumentError(ManifestError):
    """One document cannot be loaded; the message starts with ``path:line:column`` when known."""

    def __init__(
        self, message: str, *, path: str, line: int | None, column: int | None = None, hint: str = ""
    ) -> None:
        super().__init__(message, path=path, line=line, hint=hint)
        self.column = column
        if line and column:
            self.message = f"{path}:{line}:{column}: {message}"
            self.args = (self.message,)


class ManifestErrors(ManifestError):
    """Several documents failed; ``errors`` holds each one, the message shows the first few."""

    def __init__(self, errors: tuple[ManifestError, ...]) -> None:
        shown = "; ".join(e.message for e in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        text = f"{len(errors)} invalid documents: {shown}{more}" if len(errors) > 1 else errors[0].message
        super().__init__(text, hint="fix the manifests in Git; nothing from this input is used until all of it loads")
        self.message = text
        self.args = (text,)
        self.path = errors[0].path
        self.line = errors[0].line
        self.errors = errors


def flatten_errors(errors: Iterable[ManifestError]) -> tuple[ManifestError, ...]:
    """Each single error, with groups expanded."""
    flat: list[ManifestError] = []
    for error in errors:
        flat.extend(error.errors if isinstance(error, ManifestErrors) else (error,))
    return tuple(flat)


def node_line(node: Node) -> int:
    """1-based line of ``node`` in its file."""
    return int(node.start_mark.line) + 1


def child(node: Node | None, key: str) -> Node | None:
    """The value node under ``key`` of a mapping node, if any."""
    if not isinstance(node, MappingNode):
        return None
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            found: Node = value_node
            return found
    return None


# ---------------------------------------------------------------------------------------------- objects


def check_objects(
    loaded: Iterable[tuple[Node, Any]], path: str
) -> tuple[tuple[LoadedDoc, ...], tuple[DocumentError, ...]]:
    """Validate composed documents as Kubernetes objects.

    Args:
        loaded: ``(node, value)`` per document, node marks relative to the file.
        path: the file, for messages.

    Returns:
        The objects that passed, and an error per problem found.
    """
    docs: list[LoadedDoc] = []
    errors: list[DocumentError] = []
    for node, value in _flatten(loaded):
        problems = _object_problems(node, value)
        if problems:
            errors.extend(DocumentError(msg, path=path, line=node_line(at)) for at, msg in problems)
        elif value:
            docs.append(LoadedDoc(value, path, node_line(node), _warnings(node) + _size_warnings(value)))
    return tuple(docs), tuple(errors)


def _flatten(loaded: Iterable[tuple[Node, Any]]) -> Iterable[tuple[Node, Any]]:
    for node, value in loaded:
        if value is None or value == {}:
            continue
        items_node = child(node, "items")
        if _is_list(value) and isinstance(items_node, SequenceNode):
            yield from zip(items_node.value, value["items"], strict=True)
        else:
            yield node, value


def _is_list(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and str(value.get("kind", "")).endswith("List")
        and isinstance(value.get("items"), list)
    )


def _object_problems(node: Node, value: Any) -> list[tuple[Node, str]]:
    if not isinstance(value, dict):
        return [(node, f"expected a Kubernetes object (a mapping), got {_type_name(value)}")]
    problems = [(node, msg) for msg in _identity_problems(value)]
    meta = child(node, "metadata")
    if isinstance(meta, MappingNode):
        problems.extend(_metadata_problems(meta, "metadata"))
    problems.extend(_template_problems(node))
    problems.extend(_data_problems(node, value))
    problems.extend(_annotation_size_problems(node, value))
    return problems


def _annotation_size_problems(node: Node, obj: dict[str, Any]) -> list[tuple[Node, str]]:
    """Annotations over the API server's total (keys plus values) limit: it refuses such an object."""
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(annotations, dict):
        return []
    total = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in annotations.items())
    if total <= MAX_ANNOTATIONS_BYTES:
        return []
    at = child(child(node, "metadata"), "annotations") or node
    return [(at, f"metadata.annotations hold {total} bytes, over the API server's {MAX_ANNOTATIONS_BYTES}-byte "
                 "limit for keys and values together; it will refuse the object")]


def _size_warnings(obj: dict[str, Any]) -> tuple[str, ...]:
    """An object larger than etcd's default request limit: the API server will most likely refuse it."""
    size = len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    if size <= MAX_OBJECT_BYTES:
        return ()
    return (f"the object is {size} bytes as JSON, over etcd's default {MAX_OBJECT_BYTES}-byte (1.5 MiB) request "
            "limit; the API server will most likely refuse it",)


def _identity_problems(obj: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for field in ("apiVersion", "kind"):
        if not isinstance(obj.get(field), str) or not obj[field]:
            problems.append(f"{field} is missing or not a string; every object needs apiVersion and kind")
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return [*problems, "metadata is missing or not a mapping; every object needs metadata.name"]
    name_problem = _name_problem(meta) or _kind_name_problem(obj, meta)
    if name_problem:
        problems.append(name_problem)
    namespace = meta.get("namespace", "")
    if not isinstance(namespace, str):
        problems.append("metadata.namespace must be a string")
    elif namespace and not _DNS_LABEL.fullmatch(namespace):
        problems.append(f"metadata.namespace {namespace[:80]!r} is not a valid namespace name (lowercase letters, "
                        "digits and '-', at most 63 characters, starting and ending with a letter or digit)")
    return problems


def _kind_name_problem(obj: dict[str, Any], meta: dict[str, Any]) -> str | None:
    """The built-in kind's own name rule (``_NAME_RULES``), when the name breaks it."""
    name, api_version, kind = meta.get("name"), obj.get("apiVersion"), obj.get("kind")
    if not isinstance(name, str) or not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    group = api_version.rpartition("/")[0]
    rule = _NAME_RULES.get((group, kind))
    if rule is None or rule[1].fullmatch(name):
        return None
    return f"metadata.name {name[:80]!r} is not a valid {kind} name: it must be {rule[0]}"


def _name_problem(meta: dict[str, Any]) -> str | None:
    name = meta.get("name")
    if name is None:
        annotations = meta.get("annotations")
        is_hook = isinstance(annotations, dict) and any(a in annotations for a in _HOOK_ANNOTATIONS)
        if meta.get("generateName") and is_hook:
            return None
        return "metadata.name is missing (generateName is only allowed for hooks)"
    if not isinstance(name, str) or not name:
        return "metadata.name must be a non-empty string"
    if name in (".", "..") or "/" in name or "%" in name or len(name) > 253 or not name.isprintable():
        return f"metadata.name {name!r} is not a valid object name"
    if name != name.strip():
        return f"metadata.name {name!r} has leading or trailing whitespace"
    return None


def _metadata_problems(meta_node: MappingNode, where: str) -> list[tuple[Node, str]]:
    problems: list[tuple[Node, str]] = []
    for field in _STRING_MAPS:
        problems.extend(_string_map_problems(child(meta_node, field), f"{where}.{field}"))
    return problems


def _template_problems(node: Node) -> list[tuple[Node, str]]:
    """Labels and annotations of pod templates (``spec.template``, ``spec.jobTemplate.spec.template``)."""
    problems: list[tuple[Node, str]] = []
    spec = child(node, "spec")
    for where, template in (
        ("spec.template", child(spec, "template")),
        ("spec.jobTemplate.spec.template", child(child(child(spec, "jobTemplate"), "spec"), "template")),
    ):
        meta = child(template, "metadata")
        if isinstance(meta, MappingNode):
            problems.extend(_metadata_problems(meta, f"{where}.metadata"))
    return problems


def _data_problems(node: Node, obj: dict[str, Any]) -> list[tuple[Node, str]]:
    fields = _STRING_DATA_KINDS.get(str(obj.get("kind")), ()) if obj.get("apiVersion") == "v1" else ()
    problems: list[tuple[Node, str]] = []
    secret = obj.get("kind") == "Secret"  # its values are never quoted back (they reach screens and logs)
    for field in fields:
        problems.extend(_string_map_problems(child(node, field), field, hide_values=secret))
    return problems


def _string_map_problems(node: Node | None, where: str, *, hide_values: bool = False) -> list[tuple[Node, str]]:
    if node is None or (isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"):
        return []
    if not isinstance(node, MappingNode):
        return [(node, f"{where} must be a mapping of strings to strings")]
    problems: list[tuple[Node, str]] = []
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, ScalarNode) else "?"
        if not isinstance(key_node, ScalarNode) or key_node.tag != STR_TAG:
            reading = _reading(key_node) if isinstance(key_node, ScalarNode) else "a collection"
            problems.append((key_node, f"{where}: key {key} is read as {reading}, not a string; quote it"))
        message = _non_string_value(value_node, hide_value=hide_values)
        if message:
            problems.append((value_node, f"{where}.{key}: {message}"))
    return problems


def _non_string_value(node: Node, *, hide_value: bool = False) -> str | None:
    if not isinstance(node, ScalarNode):
        return f"expected a string, got a {'list' if isinstance(node, SequenceNode) else 'mapping'}"
    if node.tag == STR_TAG:
        return None
    kind = node.tag.rsplit(":", 1)[-1]
    if hide_value:
        return f"the value is read as {kind}, not a string (kubectl rejects it); quote it"
    reading = _reading(node)
    return (
        f"{node.value} is read as {kind} {reading}, not a string (kubectl rejects it); "
        f'quote it: "{node.value}"'
    )


def _reading(node: ScalarNode) -> str:
    """How YAML 1.1 reads a plain scalar, e.g. ``1.1`` for ``1.10``."""
    text = str(node.value)
    if node.tag == _BOOL_TAG:
        return "true" if text.lower() in ("y", "yes", "true", "on") else "false"
    if node.tag == _FLOAT_TAG:
        try:
            return repr(float(text.replace("_", "")))
        except ValueError:
            return text
    if node.tag == "tag:yaml.org,2002:null":
        return "null"
    return text


# ---------------------------------------------------------------------------------------------- warnings


def _warnings(root: Node) -> tuple[str, ...]:
    """Plain scalars whose YAML 1.1 value does not look like their text (``on``, ``1.10``, ``1e3``)."""
    warnings: list[str] = []
    stack: list[tuple[Node, str]] = [(root, "")]
    while stack and len(warnings) < MAX_WARNINGS:
        node, where = stack.pop()
        if isinstance(node, MappingNode):
            stack.extend((v, f"{where}.{getattr(k, 'value', '?')}") for k, v in reversed(node.value))
        elif isinstance(node, SequenceNode):
            stack.extend((v, f"{where}[{i}]") for i, v in reversed(list(enumerate(node.value))))
        elif isinstance(node, ScalarNode) and not node.style and _surprising(node):
            warnings.append(
                f"line {node_line(node)}: {where.lstrip('.')}: {node.value} is read as "
                f"{node.tag.rsplit(':', 1)[-1]} {_reading(node)}; quote it if you meant the text"
            )
    return tuple(warnings)


def _surprising(node: ScalarNode) -> bool:
    if node.tag == _BOOL_TAG:
        return str(node.value).lower() not in ("true", "false")
    if node.tag == _FLOAT_TAG:
        return _reading(node) != str(node.value)
    return False


def _type_name(value: Any) -> str:
    names = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
    return names.get(type(value), type(value).__name__)
