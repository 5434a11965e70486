"""Argument checks shared by the config dataclasses: messages name the field and the rule."""

from __future__ import annotations

import math
from typing import Any


def check_number(
    owner: str,
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    strict: bool = False,
    maximum: float | None = None,
) -> float:
    """``value`` as a finite float, or TypeError/ValueError naming ``owner.name``.

    ``minimum`` is a lower bound (exclusive when ``strict``), ``maximum`` an inclusive
    upper bound.
    """
    rule = "a finite number"
    if minimum is not None:
        rule += f" {'>' if strict else '>='} {minimum:g}"
    if maximum is not None:
        rule += f" and <= {maximum:g}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{owner}.{name} must be {rule}; got {type(value).__name__} {value!r}")
    v = float(value)
    ok = math.isfinite(v)
    if ok and minimum is not None:
        ok = v > minimum if strict else v >= minimum
    if ok and maximum is not None:
        ok = v <= maximum
    if not ok:
        raise ValueError(f"{owner}.{name} must be {rule}; got {value!r}")
    return v


def check_int(
    owner: str,
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    optional: bool = False,
) -> None:
    """Raise TypeError/ValueError naming ``owner.name`` unless ``value`` is an int in range.

    ``optional`` also accepts ``None``.
    """
    if optional and value is None:
        return
    rule = "an int"
    if minimum is not None and maximum is not None:
        rule += f" in {minimum}..{maximum}"
    elif minimum is not None:
        rule += f" >= {minimum}"
    elif maximum is not None:
        rule += f" <= {maximum}"
    if optional:
        rule += " or None"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}.{name} must be {rule}; got {type(value).__name__} {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{owner}.{name} must be {rule}; got {value!r}")
