"""Semantic versions and the version ranges Flux and Helm accept (Masterminds ``semver`` constraints).

Role: pick the chart version a ``HelmRelease`` (``spec.chart.spec.version``) or an ``OCIRepository``
(``spec.ref.semver``) asks for, from a repository index or a registry's tag list.

Supported: ``=, !=, >, <, >=, <=``, ``~`` (patch range), ``^`` (minor range, as Masterminds: ``^0.x``
stays in 0.x), wildcards ``1.x``/``1.2.*``/``*``, hyphen ranges ``1 - 2``, ``,`` or space as AND, ``||``
as OR. A version with a pre-release tag matches only a constraint group that names a pre-release (as in
Masterminds v3). Build metadata is ignored in comparisons.

Constraint: pure functions; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

_VERSION = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$")
_PART = re.compile(r"^(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


@dataclass(frozen=True, slots=True, order=False)
class Version:
    """A parsed semantic version."""

    major: int
    minor: int
    patch: int
    pre: tuple[int | str, ...] = ()
    text: str = ""

    def key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        """Sort key (a release sorts after its pre-releases)."""
        pre = tuple((0, p) if isinstance(p, int) else (1, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)


def parse_version(text: str) -> Version | None:
    """``text`` as a version (``v`` prefix and missing minor/patch allowed), None when it is not one."""
    match = _VERSION.match(text.strip())
    if match is None:
        return None
    major, minor, patch, pre, _build = match.groups()
    parts = tuple(int(p) if p.isdigit() else p for p in pre.split(".")) if pre else ()
    return Version(int(major), int(minor or 0), int(patch or 0), parts, text)


_Check = Callable[[Version], bool]


@dataclass(frozen=True, slots=True)
class _Group:
    checks: tuple[_Check, ...]
    allows_pre: bool

    def matches(self, version: Version) -> bool:
        if version.pre and not self.allows_pre:
            return False
        return all(check(version) for check in self.checks)


class ConstraintError(ValueError):
    """A version range that cannot be parsed."""


def _lt(a: Version, b: Version) -> bool:
    return a.key() < b.key()


def _bound(text: str) -> tuple[Version, int]:
    """The lower bound of a (possibly wildcard) version and how many leading parts were given."""
    match = _PART.match(text)
    if match is None:
        raise ConstraintError(f"{text!r} is not a version")
    major, minor, patch, pre = match.groups()
    given = 0
    nums: list[int] = []
    for part in (major, minor, patch):
        if part is None or part in "xX*":
            break
        given += 1
        nums.append(int(part))
    nums += [0] * (3 - len(nums))
    pre_parts = tuple(int(p) if p.isdigit() else p for p in pre.split(".")) if pre and given == 3 else ()
    return Version(nums[0], nums[1], nums[2], pre_parts, text), given


def _next(version: Version, given: int) -> Version:
    """The first version after the wildcard range ``version`` with ``given`` parts fixed."""
    if given <= 1:
        return Version(version.major + 1, 0, 0, (0,))
    if given == 2:
        return Version(version.major, version.minor + 1, 0, (0,))
    return Version(version.major, version.minor, version.patch + 1, (0,))


def _comparator(op: str, text: str) -> list[_Check]:
    low, given = _bound(text)
    if given == 0:
        return [] if op in ("", "=", ">=", "~", "^") else [lambda v: False] if op in ("<", ">", "!=") else []
    high = _next(low, given)
    if op in ("", "="):
        if given == 3:
            return [lambda v: v.key()[:4] == low.key()[:4] and v.pre == low.pre]
        return [lambda v: not _lt(v, low), lambda v: _lt(v, high)]
    if op == "!=":
        if given == 3:
            return [lambda v: not (v.key()[:4] == low.key()[:4] and v.pre == low.pre)]
        return [lambda v: _lt(v, low) or not _lt(v, high)]
    if op == ">":
        return [lambda v: not _lt(v, high)] if given < 3 else [lambda v: _lt(low, v)]
    if op == ">=":
        return [lambda v: not _lt(v, low)]
    if op == "<":
        return [lambda v: _lt(v, low)]
    if op == "<=":
        return [lambda v: _lt(v, high)] if given < 3 else [lambda v: not _lt(low, v)]
    if op == "~":
        upper = _next(low, 2) if given >= 2 else _next(low, 1)
        return [lambda v: not _lt(v, low), lambda v: _lt(v, upper)]
    if op == "^":
        if low.major > 0 or given == 1:
            upper = Version(low.major + 1, 0, 0, (0,))
        elif low.minor > 0 or given == 2:
            upper = Version(0, low.minor + 1, 0, (0,))
        else:
            upper = Version(0, 0, low.patch + 1, (0,))
        return [lambda v: not _lt(v, low), lambda v: _lt(v, upper)]
    raise ConstraintError(f"unknown operator {op!r}")


_TOKEN = re.compile(r"(=|!=|>=|<=|>|<|~>|~|\^)?\s*(v?[0-9xX*][0-9A-Za-z.+*-]*)")


def _group(text: str) -> _Group:
    text = text.strip()
    hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", text)
    if hyphen:
        low, high = hyphen.groups()
        return _Group(tuple(_comparator(">=", low) + _comparator("<=", high)), "-" in low.lstrip("v").split("+")[0] or "-" in high)
    text = re.sub(r"(!=|>=|<=|~>|[=><~^])\s+", r"\1", text)
    checks: list[_Check] = []
    allows_pre = False
    pieces = [p for p in re.split(r"[,\s]+(?=[=!<>~^v0-9xX*])", text) if p.strip()] if text else []
    for piece in pieces:
        match = _TOKEN.fullmatch(piece.strip().replace(" ", ""))
        if match is None:
            raise ConstraintError(f"cannot read {piece!r} in the version range {text!r}")
        op, version = match.groups()
        op = "~" if op == "~>" else (op or "")
        checks.extend(_comparator(op, version))
        core = version.split("+")[0]
        allows_pre = allows_pre or "-" in core
    return _Group(tuple(checks), allows_pre)


@dataclass(frozen=True, slots=True)
class Constraint:
    """A parsed version range: groups joined by ``||``."""

    text: str
    groups: tuple[_Group, ...]

    def matches(self, version: Version) -> bool:
        """Whether ``version`` satisfies the range."""
        return any(group.matches(version) for group in self.groups)


def parse_constraint(text: str) -> Constraint:
    """``text`` (empty or ``*`` means any release) as a constraint.

    Raises:
        ConstraintError: the range cannot be read.
    """
    raw = text.strip() or "*"
    return Constraint(raw, tuple(_group(part) for part in raw.split("||")))


def highest(versions: Iterable[str], constraint: str) -> str | None:
    """The highest of ``versions`` (texts; unparsable ones are skipped) matching ``constraint``.

    Raises:
        ConstraintError: the range cannot be read.
    """
    wanted = parse_constraint(constraint)
    best: Version | None = None
    for text in versions:
        version = parse_version(text)
        if version is not None and wanted.matches(version) and (best is None or _lt(best, version)):
            best = version
    return best.text if best else None
