"""Flux's post-build variable substitution language: ``${var}`` expressions as kustomize-controller expands them.

Role: what ``fluxcd/pkg/envsubst`` (a fork of drone/envsubst) does to each object's YAML when a Flux
``Kustomization`` declares ``postBuild`` variables, so fleetdeck renders what Flux applies:

* ``${var}``; ``$var`` is *not* a variable (left as written); a lone ``$`` is text.
* ``$$`` is an escaped ``$``: ``$${var}`` yields the text ``${var}``.
* Defaults: ``${var:=default}``, ``${var:-default}``, ``${var=default}`` (all: the default when the value is
  empty or unset, as Flux's ``toDefault``); the default may hold nested ``${…}``. ``${var:+x}`` and
  ``${var:?x}`` parse and behave as defaults too (as in Flux).
* ``${#var}``, ``${var^}``, ``${var^^}``, ``${var,}``, ``${var,,}``, ``${var:offset}``,
  ``${var:offset:length}``, ``${var#glob}``, ``${var##glob}``, ``${var%glob}``, ``${var%%glob}``,
  ``${var/old/new}``, ``${var//old/new}``, ``${var/#old/new}``, ``${var/%old/new}``.
* Anything else inside ``${…}`` (``${a.b}``, ``${ a}``, ``${a-b}``, an unclosed ``${``) is an error, as in Flux.
* Unset variables expand to the empty string, unless ``strict`` (kustomize-controller's
  ``StrictPostBuildSubstitutions`` feature gate, off by default): then a variable without a default is an
  error naming it.

Constraint: error messages name variables, never values (values may come from Secrets).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from core.errors import RenderError

VAR_NAME = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")
"""Names kustomize-controller accepts for variables (``^[_[:alpha:]][_[:alpha:][:digit:]]*$``)."""
MAX_NESTING = 64
"""``${a:=${b:=…}}`` nesting refused beyond this (the parser and evaluator recurse)."""
_DEFAULT_OPS = frozenset({"-", "+", "=", "?", ":-", ":+", ":=", ":?"})


class SubstitutionError(RenderError):
    """A ``${…}`` expression is malformed, or (strict mode) names an unset variable."""


@dataclass(slots=True)
class _Func:
    param: str
    op: str = ""
    args: list[_Node] = field(default_factory=list)


_Node = str | _Func


def _is_ident(char: str) -> bool:
    return char.isalnum() or char == "_"


class _Parser:
    """Recursive descent over one text, following the fork's scanner (``$$`` escapes, ``\\/`` and ``\\\\`` in
    function arguments)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.text[index] if index < len(self.text) else ""

    def parse(self) -> list[_Node]:
        nodes: list[_Node] = []
        text: list[str] = []
        while self.pos < len(self.text):
            dollar = self.text.find("$", self.pos)
            if dollar < 0:
                text.append(self.text[self.pos:])
                break
            if dollar > self.pos:  # plain text up to the next '$' in one step
                text.append(self.text[self.pos:dollar])
                self.pos = dollar
            char = self.text[self.pos]
            if char == "$" and self.peek(1) == "{":
                if text:
                    nodes.append("".join(text))
                    text = []
                self.pos += 2
                nodes.append(self.func())
            elif char == "$" and self.peek(1) == "$":
                text.append("$")
                self.pos += 2
            else:
                text.append(char)
                self.pos += 1
        if text:
            nodes.append("".join(text))
        return nodes

    def fail(self, why: str) -> SubstitutionError:
        return SubstitutionError(f"variable substitution failed: {why}")

    def func(self) -> _Func:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(f"expressions nested more than {MAX_NESTING} deep")
        try:
            return self._func()
        finally:
            self.depth -= 1

    def _func(self) -> _Func:
        if self.peek() == "#":
            self.pos += 1
            name = self.ident()
            if not name:
                raise self.fail("bad substitution")
            self.close()
            return _Func(name, "#")
        name = self.ident()
        if not name:
            raise self.fail("unable to parse variable name")
        char = self.peek()
        if char == ":":
            if self.peek(1) and self.peek(1) in "=-?+":
                op = ":" + self.peek(1)
                self.pos += 2
                return self.default(name, op)
            return self.substring(name)
        if char == "=":
            self.pos += 1
            return self.default(name, "=")
        if char in (",", "^"):
            op = char
            self.pos += 1
            if self.peek() and self.peek() in ",^":
                op += self.peek()
                self.pos += 1
            self.close()
            return _Func(name, op)
        if char == "/":
            return self.replace(name)
        if char in ("#", "%"):
            op = char
            self.pos += 1
            if self.peek() == char:
                op += char
                self.pos += 1
            node = _Func(name, op, [self.param(lambda c: c != "}")])
            self.close()
            return node
        if char == "}":
            self.pos += 1
            return _Func(name)
        raise self.fail("missing closing brace")

    def ident(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and _is_ident(self.text[self.pos]):
            self.pos += 1
        return self.text[start:self.pos]

    def close(self) -> None:
        if self.peek() != "}":
            raise self.fail("bad substitution")
        self.pos += 1

    def param(self, accept: Callable[[str], bool], *, escapes: bool = False) -> _Node:
        """One argument: a nested ``${…}``, or text of accepted characters (at least one); ``escapes``
        (replace patterns only, as in the fork) turns ``$$``, ``\\/`` and ``\\\\`` into one character."""
        if self.peek() == "$" and self.peek(1) == "{":
            self.pos += 2
            return self.func()
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "$" and self.peek(1) == "{":
                break
            if escapes and ((char == "$" and self.peek(1) == "$") or (char == "\\" and self.peek(1) in ("/", "\\"))):
                out.append(self.peek(1))
                self.pos += 2
                continue
            if not accept(char):
                break
            out.append(char)
            self.pos += 1
        if not out:
            raise self.fail("unable to parse substitution within function")
        return "".join(out)

    def default(self, name: str, op: str) -> _Func:
        node = _Func(name, op)
        while True:
            if self.pos >= len(self.text):
                raise self.fail("unable to parse substitution within function")
            if self.peek() == "}":
                self.pos += 1
                return node
            node.args.append(self.param(lambda c: c != "}"))

    def substring(self, name: str) -> _Func:
        self.pos += 1  # the ':'
        node = _Func(name, ":", [self.param(lambda c: c not in (":", "}"))])
        if self.peek() == "}":
            self.pos += 1
            return node
        if self.peek() != ":":
            raise self.fail("bad substitution")
        self.pos += 1
        node.args.append(self.param(lambda c: c != "}"))
        self.close()
        return node

    def replace(self, name: str) -> _Func:
        self.pos += 1  # the first '/'
        op = "/"
        if self.peek() and self.peek() in "/#%":
            op += self.peek()
            self.pos += 1
        node = _Func(name, op)
        node.args.append("" if self.peek() == "/" else self.param(lambda c: c != "/", escapes=True))
        if self.peek() != "/":
            raise self.fail("bad substitution")
        self.pos += 1
        if self.peek() == "}":
            self.pos += 1
            return node
        node.args.append(self.param(lambda c: c != "}", escapes=True))
        self.close()
        return node


def substitute(text: str, variables: Mapping[str, str], *, strict: bool = False) -> str:
    """``text`` with every ``${…}`` expanded from ``variables``.

    Raises:
        SubstitutionError: a malformed expression, or (``strict``) an unset variable without a default;
            the message names the variable, never a value.
    """
    if "$" not in text:
        return text
    return "".join(_evaluate(node, variables, strict) for node in _Parser(text).parse())


def _evaluate(node: _Node, variables: Mapping[str, str], strict: bool) -> str:
    if isinstance(node, str):
        return node
    args = [_evaluate(arg, variables, strict) for arg in node.args]
    exists = node.param in variables
    if strict and not exists and node.op not in _DEFAULT_OPS:
        raise SubstitutionError(f'variable substitution failed: variable not set (strict mode): "{node.param}"')
    return _apply(node.op, variables.get(node.param, ""), args)


def _apply(op: str, value: str, args: list[str]) -> str:
    if op in ("", *_DEFAULT_OPS):
        return "".join(args) if not value and args else value
    if op == "#" and not args:
        return str(len(value.encode()))
    if op in (",", ",,", "^", "^^"):
        if op == ",,":
            return value.lower()
        if op == "^^":
            return value.upper()
        if not value:
            return value
        return (value[0].lower() if op == "," else value[0].upper()) + value[1:]
    if op == ":":
        return _substring(value, args)
    if op in ("#", "##"):
        return _trim_prefix(value, args[0], longest=op == "##")
    if op in ("%", "%%"):
        return _trim_prefix(value[::-1], args[0][::-1], longest=op == "%%")[::-1]
    return _replace(op, value, args)


def _substring(value: str, args: list[str]) -> str:
    try:
        pos = int(args[0])
    except ValueError:
        return value
    if pos < 0:
        pos = max(len(value) + pos, 0)
    if len(args) == 1:
        return value[pos:]
    try:
        length = int(args[1])
    except ValueError:
        return value
    if length < 0:
        end = len(value) + length
        return "" if end < pos else value[pos:end]
    return value[pos:pos + length]


def _replace(op: str, value: str, args: list[str]) -> str:
    old = args[0] if args else ""
    new = args[1] if len(args) > 1 else ""
    if op == "//":
        return value.replace(old, new) if old else value
    if op == "/":
        return value.replace(old, new, 1) if old else value
    if len(args) != 2:
        return value
    if op == "/#":
        return value.replace(old, new, 1) if value.startswith(old) else value
    return value.removesuffix(old) + new if value.endswith(old) else value  # "/%"


def _trim_prefix(value: str, pattern: str, *, longest: bool) -> str:
    regex = _glob(pattern)
    if regex is None:
        return value
    candidates = [value[:len(value) - i] for i in range(len(value))]  # longest first, never empty
    matches = [c for c in candidates if regex.fullmatch(c)]
    if not matches:
        return value
    return value[len(matches[0] if longest else matches[-1]):]


def _glob(pattern: str) -> re.Pattern[str] | None:
    """Go's ``path.Match`` pattern as a regex (``*`` and ``?`` do not match ``/``); None when malformed."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                return None
            body = pattern[i + 1:end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    try:
        return re.compile("".join(out), re.S)
    except re.error:
        return None


def check_names(variables: Mapping[str, str]) -> None:
    """Refuse a variable name kustomize-controller refuses (the whole build fails there too).

    Raises:
        SubstitutionError: names the first invalid variable.
    """
    for name in sorted(variables):
        if not VAR_NAME.match(name):
            raise SubstitutionError(f"'{name}' var name is invalid, must match '^[_[:alpha:]][_[:alpha:][:digit:]]*$'",
                                    hint="rename the key of the ConfigMap or Secret, or of postBuild.substitute")
