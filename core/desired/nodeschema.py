"""Validate a composed YAML node tree against a JSON Schema, keeping the line of every problem.

Role: the fleet file's validation. Checking the *nodes* (not the loaded values) lets every error name the
line, and driving it from the published ``fleet.schema.json`` keeps the schema and the loader in step
by construction. Supports the subset that schema uses: ``type``, ``enum``, ``properties``, ``required``,
``additionalProperties``, ``propertyNames``, ``items``, ``minItems``, ``uniqueItems``, ``minLength``,
``maxLength``, ``pattern``, ``minimum`` and local ``$ref``.

Constraint: pure; no I/O. Unknown keys get a "did you mean" suggestion.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_TAG_TYPES = {
    "tag:yaml.org,2002:str": "string",
    "tag:yaml.org,2002:int": "integer",
    "tag:yaml.org,2002:float": "number",
    "tag:yaml.org,2002:bool": "boolean",
    "tag:yaml.org,2002:null": "null",
}
_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing",
    "object": "a mapping",
    "array": "a list",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One schema violation."""

    field: str
    """Dotted path such as ``apps[2].sync.selfHeal``."""
    line: int
    message: str


@dataclass(slots=True)
class _Walk:
    root: Mapping[str, Any]
    problems: list[Problem] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)


def node_type(node: Node) -> str:
    """The JSON type a node loads as."""
    if isinstance(node, MappingNode):
        return "object"
    if isinstance(node, SequenceNode):
        return "array"
    return _TAG_TYPES.get(node.tag, "string")


def validate(node: Node, schema: Mapping[str, Any]) -> tuple[list[Problem], dict[str, int]]:
    """Check ``node`` against ``schema``.

    Returns:
        The problems in file order, and the 1-based line of every field path that was visited.
    """
    walk = _Walk(schema)
    _check(walk, node, schema, "")
    walk.problems.sort(key=lambda p: p.line)
    return walk.problems, walk.lines


def _resolve(walk: _Walk, schema: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        target: Any = walk.root
        for part in str(schema["$ref"]).removeprefix("#/").split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _check(walk: _Walk, node: Node, schema: Mapping[str, Any], where: str) -> None:
    schema = _resolve(walk, schema)
    walk.lines.setdefault(where, int(node.start_mark.line) + 1)
    message = _type_problem(node, schema) or _value_problem(node, schema)
    if message:
        _report(walk, node, where, message)
    elif isinstance(node, MappingNode):
        _check_mapping(walk, node, schema, where)
    elif isinstance(node, SequenceNode):
        _check_sequence(walk, node, schema, where)


def _report(walk: _Walk, node: Node, where: str, message: str) -> None:
    walk.problems.append(Problem(where or "(top level)", int(node.start_mark.line) + 1, message))


def expected(schema: Mapping[str, Any]) -> str:
    """What a schema accepts, in words."""
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) for v in schema["enum"])
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    words = " or ".join(_TYPE_WORDS[t] for t in types)
    description = schema.get("description")
    return f"{words} ({description})" if words and description else words or str(description or "a value")


def _type_problem(node: Node, schema: Mapping[str, Any]) -> str | None:
    actual = node_type(node)
    if "enum" in schema:
        value = _scalar_value(node)
        return None if value in schema["enum"] else f"expected {expected(schema)}, got {_shown(node)}"
    types = schema.get("type")
    if types is None:
        return None
    allowed = {types} if isinstance(types, str) else set(types)
    if actual in allowed or (actual == "integer" and "number" in allowed):
        return None
    hint = "; quote it to make it a string" if "string" in allowed and isinstance(node, ScalarNode) else ""
    return f"expected {expected(schema)}, got {_shown(node)}{hint}"


def _value_problem(node: Node, schema: Mapping[str, Any]) -> str | None:
    if not isinstance(node, ScalarNode):
        return _collection_size_problem(node, schema)
    kind = node_type(node)
    if kind == "string":
        return _string_problem(node.value, schema)
    if kind in ("integer", "number") and "minimum" in schema:
        value = float(str(node.value).replace("_", ""))
        if value < schema["minimum"]:
            return f"expected at least {schema['minimum']}, got {node.value}"
    return None


def _string_problem(text: str, schema: Mapping[str, Any]) -> str | None:
    if len(text) < schema.get("minLength", 0):
        return f"expected {expected(schema)}, got an empty string"
    if len(text) > schema.get("maxLength", len(text)):
        return f"{text[:40]!r} is longer than {schema['maxLength']} characters"
    pattern = schema.get("pattern")
    if pattern and not re.search(pattern, text):
        return f"{text!r} is not valid: expected {schema.get('description', 'a value matching ' + pattern)}"
    return None


def _collection_size_problem(node: Node, schema: Mapping[str, Any]) -> str | None:
    if isinstance(node, SequenceNode) and len(node.value) < schema.get("minItems", 0):
        return f"expected at least {schema['minItems']} item(s): {schema.get('description', '')}".rstrip(": ")
    return None


def _check_mapping(walk: _Walk, node: MappingNode, schema: Mapping[str, Any], where: str) -> None:
    properties: Mapping[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    present: set[str] = set()
    for key_node, value_node in node.value:
        key = str(key_node.value) if isinstance(key_node, ScalarNode) else "?"
        present.add(key)
        path = f"{where}.{key}" if where else key
        if "propertyNames" in schema:
            _check(walk, key_node, schema["propertyNames"], path)
        if key in properties:
            _check(walk, value_node, properties[key], path)
        elif extra is False:
            _report(walk, key_node, path, _unknown_key(key, properties))
        elif isinstance(extra, Mapping):
            _check(walk, value_node, extra, path)
    for required in schema.get("required", ()):
        if required not in present:
            sub = _resolve(walk, properties.get(required, {}))
            _report(walk, node, where, f"missing required key {required!r}: {expected(sub)}")


def _unknown_key(key: str, properties: Mapping[str, Any]) -> str:
    allowed = sorted(properties)
    normalized = {re.sub(r"[-_]", "", k).lower(): k for k in allowed}
    matches = difflib.get_close_matches(re.sub(r"[-_]", "", key).lower(), list(normalized), n=1, cutoff=0.6)
    suggestion = f" (did you mean {normalized[matches[0]]!r}?)" if matches else ""
    return f"unknown key {key!r}{suggestion}; expected one of: {', '.join(allowed)}"


def _check_sequence(walk: _Walk, node: SequenceNode, schema: Mapping[str, Any], where: str) -> None:
    seen: dict[Any, int] = {}
    for index, item in enumerate(node.value):
        path = f"{where}[{index}]"
        if "items" in schema:
            _check(walk, item, schema["items"], path)
        if schema.get("uniqueItems") and isinstance(item, ScalarNode):
            if item.value in seen:
                _report(walk, item, path, f"{item.value!r} is listed twice (first at line {seen[item.value]})")
            seen.setdefault(item.value, int(item.start_mark.line) + 1)


def _scalar_value(node: Node) -> Any:
    if not isinstance(node, ScalarNode):
        return None
    kind = node_type(node)
    if kind == "integer":
        try:
            return int(str(node.value).replace("_", ""))
        except ValueError:
            return node.value
    return node.value


def _shown(node: Node) -> str:
    kind = node_type(node)
    if isinstance(node, ScalarNode) and kind != "null":
        return f"{_TYPE_WORDS[kind]} {node.value!r}" if kind != "string" else f"the string {node.value!r}"
    return _TYPE_WORDS[kind]
