"""Label selectors for the simulated cluster's list and watch (``a=b,c!=d,e,!f,g in (x,y)``).

Role: parse a selector string once into requirements and test label maps against it, with the
apiserver's semantics (``!=`` and ``notin`` also match objects without the label). Constraint: pure;
a malformed selector raises ``ValueError`` and the caller turns it into a 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_SET_REQUIREMENT = re.compile(r"^\s*(\S+)\s+(in|notin)\s+\(([^()]*)\)\s*$")
_KEY = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_./]*)?[A-Za-z0-9]$")


@dataclass(frozen=True, slots=True)
class Selector:
    """A parsed label selector; an empty selector matches everything."""

    requirements: tuple[Callable[[Mapping[str, str]], bool], ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether ``labels`` satisfies every requirement."""
        values = labels or {}
        return all(requirement(values) for requirement in self.requirements)


def parse_selector(text: str) -> Selector:
    """Parse ``text``.

    Raises:
        ValueError: a requirement is malformed (the message quotes it).
    """
    return Selector(tuple(_requirement(part) for part in _split(text) if part.strip()))


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _requirement(part: str) -> Callable[[Mapping[str, str]], bool]:
    if match := _SET_REQUIREMENT.match(part):
        key, operator, values = _checked(match.group(1)), match.group(2), match.group(3)
        allowed = frozenset(v.strip() for v in values.split(",") if v.strip())
        if operator == "in":
            return lambda labels: labels.get(key) in allowed
        return lambda labels: labels.get(key) not in allowed
    for operator in ("!=", "==", "="):
        if operator in part:
            key, _, value = (s.strip() for s in part.partition(operator))
            _checked(key)
            if operator == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    key = part.strip()
    if key.startswith("!"):
        absent = _checked(key[1:].strip())
        return lambda labels: absent not in labels
    present = _checked(key)
    return lambda labels: present in labels


def _checked(key: str) -> str:
    if not _KEY.match(key):
        raise ValueError(f"invalid label selector requirement {key!r}")
    return key
