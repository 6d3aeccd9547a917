"""Safe YAML loading for manifests and the fleet file.

Role: turn bytes from the config repo into plain Python values the way kubectl (go-yaml v2) would, or fail
with an error naming file, line and column. Budgets bound the work any input can cause: a size cap, a
nesting limit (no ``RecursionError``) and an alias-expansion budget that rejects "billion laughs" bombs
while the document is being composed, before anything traverses it.

Constraint: pure CPU work on values in memory, no file system and no network; PyYAML's pure-Python
parser is used on purpose (the C parser composes nodes itself, out of reach of the budgets).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from core.desired.documents import (
    DocumentError,
    LoadedDoc,
    ManifestErrors,
    check_objects,
    flatten_errors,
    node_line,
)
from core.errors import ManifestError

__all__ = [
    "DEFAULT_BUDGET",
    "Budget",
    "DocumentError",
    "LoadedDoc",
    "ManifestErrors",
    "SafeLoader",
    "compose_chunk",
    "compose_documents",
    "compose_single",
    "construct",
    "decode",
    "load_documents",
    "split_documents",
]

MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True, slots=True)
class Budget:
    """Limits on what one input may cost to load."""

    max_bytes: int = 10 * 1024 * 1024
    """Bytes per input (Argo CD's per-manifest default)."""
    max_depth: int = 200
    """Nesting levels per document; real CRD schemas stay well below, Python's stack does not."""
    alias_floor: int = 10_000
    """Nodes that aliases may add to a document regardless of its size."""
    max_nodes: int = 2_000_000
    """Nodes per document, aliases expanded."""


DEFAULT_BUDGET = Budget()


# ---------------------------------------------------------------------------------------------- resolver


class _GoResolver(BaseResolver):
    """Implicit types as go-yaml v2 (kubectl, kustomize) resolves them: no timestamps, no base 60."""


_IMPLICIT = (
    (
        "tag:yaml.org,2002:bool",
        r"y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF",
        "yYnNtTfFoO",
    ),
    (
        "tag:yaml.org,2002:int",
        r"[-+]?(?:0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|0[0-7_]+|0|[1-9][0-9_]*)",
        "-+0123456789",
    ),
    (
        "tag:yaml.org,2002:float",
        r"[-+]?(?:\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
        "-+0123456789.",
    ),
    ("tag:yaml.org,2002:null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
    (MERGE_TAG, r"<<", "<"),
)
for _tag, _pattern, _first in _IMPLICIT:
    _GoResolver.add_implicit_resolver(_tag, re.compile(f"^(?:{_pattern})$"), list(_first))


# ---------------------------------------------------------------------------------------------- composer


class BudgetExceeded(ComposerError):
    """A document is over a budget (nesting, node count, alias expansion): refused before it costs more."""



class _BudgetComposer(Composer):
    """Composes nodes while charging every node, and every alias expansion, against a budget.

    The event methods come from ``Parser`` or libyaml's ``CParser``, whichever the loader mixes in.
    """

    if TYPE_CHECKING:

        def check_event(self, *choices: Any) -> bool: ...
        def peek_event(self) -> Any: ...

    budget: Budget

    def compose_document(self) -> Node | None:
        self._depth = 0
        self._composed = 0
        self._expanded = 0
        self._weights: dict[int, int] = {}
        try:
            return super().compose_document()  # type: ignore[no-any-return]
        finally:
            self._weights = {}

    def compose_node(self, parent: Node | None, index: int) -> Node:
        if self.check_event(AliasEvent):
            mark = self._next_mark()
            node = cast(Node, super().compose_node(parent, index))
            self._charge_alias(node, mark)
            return node
        self._depth += 1
        if self._depth > self.budget.max_depth:
            raise BudgetExceeded(None, None, f"nested deeper than {self.budget.max_depth} levels",
                                self._next_mark())
        try:
            node = cast(Node, super().compose_node(parent, index))
        finally:
            self._depth -= 1
        self._weigh(node)
        return node

    def compose_mapping_node(self, anchor: str | None) -> MappingNode:  # type: ignore[override]
        node: MappingNode = super().compose_mapping_node(anchor)  # type: ignore[arg-type]
        _check_duplicate_keys(node)
        return node

    def _next_mark(self) -> Any:
        return self.peek_event().start_mark  # type: ignore[no-untyped-call]

    def _charge_alias(self, node: Node, mark: Any) -> None:
        weight = self._weights.get(id(node))
        if weight is None:
            raise BudgetExceeded(None, None, "alias refers to a node that contains it (recursive alias)", mark)
        self._expanded += weight
        if self._expanded > max(self.budget.alias_floor, self._composed):
            raise BudgetExceeded(
                None, None,
                f"aliases expand to more than {max(self.budget.alias_floor, self._composed)} nodes "
                "(a YAML alias bomb?); refusing to expand them", mark)

    def _weigh(self, node: Node) -> None:
        self._composed += 1
        weight = 1
        if isinstance(node, SequenceNode):
            weight += sum(self._weights[id(child)] for child in node.value)
        elif isinstance(node, MappingNode):
            weight += sum(self._weights[id(k)] + self._weights[id(v)] for k, v in node.value)
        if weight > self.budget.max_nodes:
            raise BudgetExceeded(None, None, f"document has more than {self.budget.max_nodes} nodes",
                                node.start_mark)
        self._weights[id(node)] = weight


def _check_duplicate_keys(node: MappingNode) -> None:
    first_seen: dict[tuple[str, str], int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, ScalarNode) or key_node.tag == MERGE_TAG:
            continue
        ident = (key_node.tag, key_node.value)
        line = node_line(key_node)
        if ident in first_seen:
            raise ComposerError(None, None,
                                f"duplicate key {key_node.value!r} (first defined at line {first_seen[ident]})",
                                key_node.start_mark)
        first_seen[ident] = line


# ---------------------------------------------------------------------------------------------- constructor


class _JSONConstructor(SafeConstructor):
    """Builds only JSON-representable values, with string keys, as kubectl's YAML-to-JSON step does."""

    _BOOLS = {"y": True, "yes": True, "true": True, "on": True, "n": False, "no": False, "false": False,
              "off": False}

    def construct_yaml_bool(self, node: ScalarNode) -> bool:
        return self._BOOLS[str(self.construct_scalar(node)).lower()]

    def construct_yaml_float(self, node: ScalarNode) -> float:
        value: float = super().construct_yaml_float(node)
        if math.isinf(value) or math.isnan(value):
            raise ConstructorError(None, None, f"{node.value!r} cannot be represented in JSON", node.start_mark)
        return value

    def construct_as_text(self, node: ScalarNode) -> str:
        return "".join(str(self.construct_scalar(node)).split())

    def construct_unsupported(self, node: Node) -> Any:
        raise ConstructorError(None, None, f"unsupported YAML tag {node.tag!r} (not valid in a manifest)",
                               node.start_mark)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            mapping[_key_text(key, key_node)] = self.construct_object(value_node, deep=deep)
        return mapping


_JSONConstructor.yaml_constructors = dict(SafeConstructor.yaml_constructors)
_JSONConstructor.add_constructor("tag:yaml.org,2002:bool", _JSONConstructor.construct_yaml_bool)  # type: ignore[type-var]
_JSONConstructor.add_constructor("tag:yaml.org,2002:float", _JSONConstructor.construct_yaml_float)  # type: ignore[type-var]
_JSONConstructor.add_constructor("tag:yaml.org,2002:timestamp", _JSONConstructor.construct_yaml_str)  # type: ignore[type-var]
_JSONConstructor.add_constructor("tag:yaml.org,2002:binary", _JSONConstructor.construct_as_text)  # type: ignore[type-var]
for _unsupported in ("set", "omap", "pairs"):
    _JSONConstructor.add_constructor(f"tag:yaml.org,2002:{_unsupported}", _JSONConstructor.construct_unsupported)  # type: ignore[type-var]


def _key_text(key: Any, node: Node) -> str:
    """Mapping keys as sigs.k8s.io/yaml turns them into JSON object keys."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, int | float):
        return repr(key)
    raise ConstructorError(None, None, "mapping keys must be scalars", node.start_mark)


class SafeLoader(Reader, Scanner, Parser, _BudgetComposer, _JSONConstructor, _GoResolver):
    """PyYAML's safe loader with go-yaml v2 implicit types, budgets and duplicate-key errors."""

    def __init__(self, text: str, *, budget: Budget = DEFAULT_BUDGET, line_offset: int = 0) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        BaseResolver.__init__(self)
        self.budget = budget
        # Marks (so every error and node line) count from the chunk's first line in the whole file.
        self.line = line_offset


CParser: Any
try:
    from yaml._yaml import CParser
except ImportError:  # PyYAML built without libyaml: only the pure-Python path
    CParser = None


class _FastLoader(_BudgetComposer, *([CParser] if CParser else []), _JSONConstructor, _GoResolver):  # type: ignore[misc]
    """libyaml's scanner and parser (about 10x faster) under the same Python composer and budgets.

    It parses a whole stream at once, so it cannot report per-document errors; any error falls back to
    the chunked pure-Python path, which does.
    """

    def __init__(self, text: str, *, budget: Budget = DEFAULT_BUDGET) -> None:
        CParser.__init__(self, text)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        BaseResolver.__init__(self)
        self.budget = budget


# ---------------------------------------------------------------------------------------------- text


def decode(data: bytes | str, path: str, *, budget: Budget = DEFAULT_BUDGET) -> str:
    """Decode ``data`` (UTF-8, or UTF-16 with a BOM) and normalize line breaks.

    Raises:
        DocumentError: the input is over the size budget or not valid UTF-8.
    """
    if len(data) > budget.max_bytes:
        raise DocumentError(f"{len(data)} bytes is over the {budget.max_bytes}-byte limit", path=path, line=None)
    if isinstance(data, bytes):
        data = _decode_bytes(data, path)
    text = data.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    bad = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if bad is not None:  # found here, the error can say where (the YAML reader's own error cannot)
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise DocumentError(f"unacceptable character #x{ord(bad.group()):04x}: special characters are not allowed "
                            "in YAML (a binary file?)", path=path, line=line, column=column)
    return text


def _decode_bytes(data: bytes, path: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DocumentError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
                            path=path, line=line, column=column) from None


_DOC_START = re.compile(r"^---(?=[ \t]|$)", re.M)
_DIRECTIVES_ONLY = re.compile(r"(?:[ \t]*(?:#.*)?\n|%.*\n)*")


def split_documents(text: str) -> list[tuple[int, str]]:
    """Split a YAML stream at ``---`` lines into ``(line_offset, chunk)`` pairs.

    Parsing chunks one by one keeps a syntax error in one document from hiding the others, and lets each
    error carry its absolute line. Directive-only chunks (``%YAML 1.1``) stay with the document they precede.
    """
    chunks: list[tuple[int, str]] = []
    start, start_line = 0, 0
    for match in _DOC_START.finditer(text):
        head = text[start : match.start()]
        if match.start() == 0 or (_DIRECTIVES_ONLY.fullmatch(head) and "%" in head):
            continue
        chunks.append((start_line, head))
        start_line += head.count("\n")
        start = match.start()
    chunks.append((start_line, text[start:]))
    return chunks


# ---------------------------------------------------------------------------------------------- loading


def compose_documents(text: str, path: str, *, budget: Budget = DEFAULT_BUDGET) -> list[tuple[Node, Any]]:
    """``(node, value)`` for each non-empty document of ``text`` (already decoded), node marks giving
    lines in the whole file.

    Raises:
        ManifestErrors: when any document failed, with one error (and line) per failed document.
    """
    if CParser is not None:
        try:
            return _compose_fast(text, budget)
        except yaml.YAMLError:
            pass  # the chunked path below reports each document's error with its line
    found: list[tuple[Node, Any]] = []
    errors: list[ManifestError] = []
    for offset, chunk in split_documents(text):
        try:
            found.extend(compose_chunk(chunk, offset, budget))
        except yaml.YAMLError as exc:
            errors.append(_yaml_error(exc, path))
    if errors:
        raise ManifestErrors(tuple(errors))
    return found


def _compose_fast(text: str, budget: Budget) -> list[tuple[Node, Any]]:
    loader = _FastLoader(text, budget=budget)
    try:
        found = []
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                found.append((node, loader.construct_document(node)))
        return found
    finally:
        loader.dispose()


def compose_chunk(chunk: str, offset: int, budget: Budget = DEFAULT_BUDGET) -> Iterator[tuple[Node, Any]]:
    """Yield ``(node, value)`` for each document of one chunk, marks counted from line ``offset``.

    Raises:
        yaml.YAMLError: the chunk is not valid YAML or exceeds the budget.
    """
    loader = SafeLoader(chunk, budget=budget, line_offset=offset)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                yield node, loader.construct_document(node)
    finally:
        loader.dispose()


def _yaml_error(exc: yaml.YAMLError, path: str) -> DocumentError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if isinstance(exc, yaml.reader.ReaderError):
        return DocumentError(f"unacceptable character #x{exc.character:04x}: {exc.reason}", path=path, line=None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None and mark is not None and context_mark.line != mark.line:
        context = f"{context} (line {context_mark.line + 1})"
    message = f"{context}, {problem}" if context else str(problem)
    if mark is None:
        return DocumentError(message, path=path, line=None)
    return DocumentError(message, path=path, line=mark.line + 1, column=mark.column + 1)


def compose_single(data: bytes | str, path: str, *, budget: Budget = DEFAULT_BUDGET) -> Node | None:
    """The node tree of a single-document file (the fleet file), or None when it is empty.

    Raises:
        ManifestError: bad encoding, YAML syntax, budget exceeded, duplicate key, or more than one document.
    """
    found = compose_documents(decode(data, path, budget=budget), path, budget=budget)
    if len(found) > 1:
        raise DocumentError("expected one YAML document, found several", path=path,
                            line=found[1][0].start_mark.line + 1)
    return found[0][0] if found else None


def construct(node: Node) -> Any:
    """The plain value of an already-composed (budget-checked) node."""
    loader = SafeLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_documents(
    data: bytes | str, path: str, *, budget: Budget = DEFAULT_BUDGET
) -> tuple[LoadedDoc, ...]:
    """Load every Kubernetes object in a YAML (or JSON) stream.

    Empty and ``null`` documents are dropped, ``List`` kinds flattened, and each object checked for
    ``apiVersion``, ``kind``, ``metadata.name`` and string-valued labels and annotations.

    Args:
        data: the file's bytes (or text).
        path: the file's path, as it should appear in errors.
        budget: size, depth and alias limits.

    Returns:
        The objects in file order.

    Raises:
        ManifestErrors: any document failed to load or validate; nothing is returned then, so a bad
            document can never shrink the desired state.
    """
    try:
        text = decode(data, path, budget=budget)
    except DocumentError as exc:
        raise ManifestErrors((exc,)) from None
    loaded: list[tuple[Node, Any]] = []
    errors: list[ManifestError] = []
    try:
        loaded.extend(compose_documents(text, path, budget=budget))
    except ManifestErrors as exc:
        errors.extend(exc.errors)
    docs, invalid = check_objects(loaded, path)
    if errors or invalid:
        raise ManifestErrors(tuple(sorted(flatten_errors([*errors, *invalid]), key=lambda e: e.line or 0)))
    return docs


def budget_violation(data: bytes, path: str, *, budget: Budget = DEFAULT_BUDGET) -> DocumentError | None:
    """Why ``data`` is over ``budget`` (size, nesting, nodes, alias expansion), or None when it is within.

    Only budgets are judged: a syntax error is not a violation (a tool that never reads the file must
    not be blocked by it; one that does will report it itself). Used to screen every file a renderer
    (kustomize) may read before it starts, so a bomb never reaches a tool without these budgets.
    """
    if len(data) > budget.max_bytes:
        return DocumentError(f"{len(data)} bytes is over the {budget.max_bytes}-byte limit", path=path, line=None)
    try:
        text = decode(data, path, budget=budget)
    except DocumentError:
        return None
    if CParser is not None:
        try:
            _compose_fast(text, budget)
            return None
        except BudgetExceeded as exc:
            return _yaml_error(exc, path)
        except yaml.YAMLError:
            pass  # a syntax error somewhere: judge each document on its own below
    for offset, chunk in split_documents(text):
        try:
            for _ in compose_chunk(chunk, offset, budget):
                pass
        except BudgetExceeded as exc:
            return _yaml_error(exc, path)
        except yaml.YAMLError:
            continue
    return None
