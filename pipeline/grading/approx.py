"""Tolerant equality with pytest.approx semantics, extended to nested containers (spec §9)."""

from __future__ import annotations

import math
import sys
from collections.abc import Collection, Mapping, Sized
from decimal import Decimal
from numbers import Complex
from typing import Any

UNORDERED_NOT_SUPPORTED = "pytest.approx() only supports ordered sequences, but got: {expected!r}"


def approx_equal(actual: Any, expected: Any, rel: float, abs_tol: float) -> bool:
    """Tell whether actual equals expected within max(rel*|expected|, abs), recursively.

    Raises TypeError, as pytest.approx does, when expected is an unordered collection.
    """
    if (not isinstance(expected, Mapping) and _as_array(expected) is None
            and not _is_sequence_like(expected) and isinstance(expected, Collection)
            and not isinstance(expected, (str, bytes))):
        raise TypeError(UNORDERED_NOT_SUPPORTED.format(expected=expected))
    return _equal(actual, expected, rel, abs_tol)


def _equal(actual: Any, expected: Any, rel: float, abs_tol: float) -> bool:
    if isinstance(expected, Mapping):
        try:
            if set(actual.keys()) != set(expected.keys()):
                return False
        except AttributeError:
            return False
        return all(_equal(actual[key], expected[key], rel, abs_tol) for key in expected)
    array = _as_array(expected)
    if array is not None:
        return _array_equal(actual, array, rel, abs_tol)
    if _is_sequence_like(expected):
        try:
            if len(actual) != len(expected):
                return False
        except TypeError:
            return False
        return all(_equal(a, e, rel, abs_tol) for a, e in zip(actual, expected))
    return _scalar_equal(actual, expected, rel, abs_tol)


def _array_equal(actual: Any, expected: Any, rel: float, abs_tol: float) -> bool:
    import numpy as np

    if not np.isscalar(actual):
        try:
            actual = np.asarray(actual)
        except Exception as exc:
            raise TypeError(f"cannot compare '{actual}' to numpy.ndarray") from exc
        if actual.shape != expected.shape:
            return False
    for index in np.ndindex(expected.shape):
        left = actual if np.isscalar(actual) else _unbox(actual[index])
        if not _equal(left, _unbox(expected[index]), rel, abs_tol):
            return False
    return True


def _scalar_equal(actual: Any, expected: Any, rel: float, abs_tol: float) -> bool:
    array = _as_array(actual)
    if array is not None:
        return all(_scalar_equal(item, expected, rel, abs_tol) for item in array.flat)
    if _is_bool(expected) and not _is_bool(actual):
        return False
    if actual == expected:
        return True
    if _is_bool(expected) or not (isinstance(expected, (Complex, Decimal))
                                  and isinstance(actual, (Complex, Decimal))):
        return False
    if math.isnan(abs(expected)):
        return False
    if math.isinf(abs(expected)):
        return False
    return abs(expected - actual) <= max(rel * abs(expected), abs_tol)


def is_ndarray(value: Any) -> bool:
    """Tell whether a value is a numpy array, without importing numpy."""
    cls = type(value)
    return cls.__module__ == "numpy" and cls.__name__ == "ndarray"


def _is_sequence_like(value: Any) -> bool:
    return (hasattr(value, "__getitem__") and isinstance(value, Sized)
            and not isinstance(value, (str, bytes)))


def _as_array(value: Any) -> Any:
    np = sys.modules.get("numpy")
    if np is None or np.isscalar(value):
        return None
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "__array__") or hasattr(value, "__array_interface__"):
        return np.asarray(value)
    return None


def _unbox(value: Any) -> Any:
    item = getattr(value, "item", None)
    return value if item is None else item()


def _is_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, np.bool_)
