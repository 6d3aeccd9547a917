"""Kubernetes ``resource.Quantity`` parsing and canonical formatting, without the kubernetes package.

Role: rule N6 of the normalization pipeline, so ``1000m`` and ``1`` (or ``1Gi`` and ``1024Mi``) compare
equal and display as the API server would store them. Constraint: pure and exact (``Decimal``); floats are
converted with ``str`` first because ``Decimal(0.1)`` is inexact. The suffix family of the input (binary,
decimal, exponent) is kept, as apimachinery does, so ``1Gi`` stays ``1Gi`` and ``1G`` stays ``1G``.
"""

from __future__ import annotations

import functools
import re
from decimal import ROUND_UP, Context, Decimal, InvalidOperation, localcontext
from enum import StrEnum
from typing import Any

_NUMBER = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(.*)$")
_EXPONENT = re.compile(r"^[eE]([+-]?\d+)$")
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {exponent: suffix for suffix, exponent in _DECIMAL.items()}
_BINARY_SUFFIX = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
_NANO = Decimal("1e-9")
_CONTEXT = Context(prec=80)


class QuantityFormat(StrEnum):
    """The suffix family a quantity was written in; it decides the canonical form."""

    BINARY_SI = "BinarySI"
    DECIMAL_SI = "DecimalSI"
    DECIMAL_EXPONENT = "DecimalExponent"


def _scale(suffix: str) -> tuple[Decimal, QuantityFormat] | None:
    """The multiplier and format of a suffix, or None when it is not a quantity suffix."""
    if suffix in _BINARY:
        return Decimal(2) ** _BINARY[suffix], QuantityFormat.BINARY_SI
    if suffix in _DECIMAL:
        return Decimal(10) ** _DECIMAL[suffix], QuantityFormat.DECIMAL_SI
    match = _EXPONENT.match(suffix)
    if match:
        return Decimal(10) ** int(match.group(1)), QuantityFormat.DECIMAL_EXPONENT
    return None


def parse_quantity(value: Any) -> tuple[Decimal, QuantityFormat]:
    """Parse a quantity (``"500m"``, ``"1Gi"``, ``"1e3"``, ``2``, ``0.5``) to an exact value.

    Values more precise than ``1n`` are rounded up (away from zero), as the API server does.

    Args:
        value: a string, int or float (not bool).

    Returns:
        The value and the suffix family it was written in.

    Raises:
        ValueError: when ``value`` is not a Kubernetes quantity.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"not a quantity: {value!r}")
    match = _NUMBER.match(str(value).strip())
    scale = _scale(match.group(2)) if match else None
    if match is None or scale is None:
        raise ValueError(f"not a quantity: {value!r}")
    with localcontext(_CONTEXT):
        try:
            amount = (Decimal(match.group(1)) * scale[0]).quantize(_NANO, rounding=ROUND_UP)
        except InvalidOperation as error:
            raise ValueError(f"quantity out of range: {value!r}") from error
        return amount.normalize(), scale[1]


def _mantissa(value: Decimal) -> tuple[int, int]:
    """``value`` as ``m * 10**e`` with an integer ``m`` and ``e`` a multiple of three."""
    sign, digits, exponent = value.normalize().as_tuple()
    assert isinstance(exponent, int)
    mantissa = int("".join(map(str, digits)) or "0")
    shift = exponent % 3
    mantissa, exponent = mantissa * 10**shift, exponent - shift
    return (-mantissa if sign else mantissa), exponent


def _format_decimal(value: Decimal, fmt: QuantityFormat) -> str:
    """Canonical decimal form: the largest SI suffix (or ``eN``) that keeps the mantissa an integer."""
    mantissa, exponent = _mantissa(value)
    if fmt is QuantityFormat.DECIMAL_SI and exponent in _DECIMAL_SUFFIX:
        return f"{mantissa}{_DECIMAL_SUFFIX[exponent]}"
    return f"{mantissa}e{exponent}" if exponent else str(mantissa)


def _format_binary(value: int) -> str:
    """Canonical binary form: the largest power-of-1024 suffix that divides ``value``."""
    power = 0
    while value % 1024 == 0 and power < len(_BINARY_SUFFIX) - 1:
        value //= 1024
        power += 1
    return f"{value}{_BINARY_SUFFIX[power]}"


def format_quantity(value: Decimal, fmt: QuantityFormat) -> str:
    """The canonical string apimachinery would print for ``value`` written in ``fmt``.

    Binary values below 1024 or with a fraction are printed in decimal form, as apimachinery does.
    """
    if value == 0:
        return "0"
    if fmt is QuantityFormat.BINARY_SI:
        if abs(value) >= 1024 and value == value.to_integral_value():
            return _format_binary(int(value))
        fmt = QuantityFormat.DECIMAL_SI
    return _format_decimal(value, fmt)


def canonical_quantity(value: Any) -> Any:
    """``value`` in canonical quantity form (``"1"`` for ``1000m``), or unchanged when it is not one.

    Strings, ints and floats are memoized by value and type (``1``, ``1.0`` and ``True`` apart); the same
    few spellings recur in every pod spec.
    """
    if type(value) in (str, int, float):
        return _canonical_cached(value)
    return _canonical(value)


@functools.lru_cache(maxsize=4096, typed=True)
def _canonical_cached(value: str | int | float) -> Any:
    return _canonical(value)


def _canonical(value: Any) -> Any:
    try:
        return format_quantity(*parse_quantity(value))
    except (ValueError, ArithmeticError):  # ArithmeticError: decimal.Overflow for "1e9999999"
        return value
