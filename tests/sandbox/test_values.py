"""Round trips of the tagged value format, its limits, and its refusal of hostile data."""

from __future__ import annotations

import cmath
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy
import pandas
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst
from hypothesis.extra import pandas as pdst

from pipeline.sandbox.values import MAX_DEPTH, REPR_LIMIT, Untransferable, ValueDecodeError, \
    ValueEncodeError, decode, encode

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def round_trip(value: object) -> object:
    """Encode, pass through JSON text, and decode."""
    return decode(json.loads(json.dumps(encode(value))))


def same(a: object, b: object) -> bool:
    """Tell whether b is a and of a's exact type, down to NaN, -0.0 and container element types."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) ==
                                                     math.copysign(1, b))
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(same(ka, kb) and same(va, vb) for (ka, va), (kb, vb)
                                        in zip(a.items(), b.items()))
    if isinstance(a, (set, frozenset)):
        partners = {element: element for element in b}
        return a == b and all(same(x, partners[x]) for x in a)
    return a == b


hashables = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    | st.binary() | st.complex_numbers(allow_nan=False),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=4),
    max_leaves=8)
plain_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2 ** 64)
    | st.floats() | st.complex_numbers() | st.text() | st.binary()
    | st.binary().map(bytearray)
    | st.builds(range, st.integers(-50, 50), st.integers(-50, 50),
                st.integers(1, 5) | st.integers(-5, -1)),
    lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=4).map(tuple)
    | st.dictionaries(hashables, inner, max_size=4) | st.sets(hashables, max_size=4)
    | st.frozensets(hashables, max_size=4),
    max_leaves=20)


@FAST
@given(plain_values)
def test_plain_values_round_trip(value: object) -> None:
    assert same(value, round_trip(value))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), -0.0, 0.0,
                                   complex(-0.0, float("nan")), 2 ** 20000, -(2 ** 200),
                                   "\ud800 lone surrogate", range(0), range(10, -10, -3)],
                         ids=["nan", "inf", "-inf", "-0.0", "0.0", "complex", "huge int",
                              "negative big int", "surrogate", "empty range", "range"])
def test_edge_values_round_trip(value: object) -> None:
    assert same(value, round_trip(value))


def test_negative_zero_and_nan_keep_their_identity() -> None:
    assert math.copysign(1, round_trip(-0.0)) == -1
    assert cmath.isnan(round_trip(complex(1, float("nan"))))


def same_array(a: numpy.ndarray, b: numpy.ndarray) -> bool:
    """Tell whether two arrays have the same type, dtype, shape and bytes."""
    return type(b) is numpy.ndarray and a.dtype == b.dtype and a.shape == b.shape \
        and a.tobytes() == b.tobytes()


array_dtypes = npst.scalar_dtypes() | npst.byte_string_dtypes() | npst.unicode_string_dtypes() \
    | npst.nested_dtypes(max_itemsize=32)


@FAST
@given(npst.arrays(array_dtypes, npst.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                                   max_side=4)))
def test_numpy_arrays_round_trip(array: numpy.ndarray) -> None:
    assert same_array(array, round_trip(array))


def test_fortran_ordered_and_sliced_arrays_round_trip() -> None:
    base = numpy.arange(24, dtype=">i4").reshape(4, 6)
    for array in (numpy.asfortranarray(base), base[::2, 1::3], base.T):
        assert same_array(numpy.ascontiguousarray(array), round_trip(array))


def test_object_arrays_round_trip_their_elements() -> None:
    array = numpy.empty((2, 2), dtype=object)
    array[:] = [[1, "a"], [[1, 2], numpy.float32(2.5)]]
    back = round_trip(array)
    assert back.dtype == object and back.shape == (2, 2)
    assert all(same(x, y) for x, y in zip(array.ravel().tolist(), back.ravel().tolist()))


@FAST
@given(npst.scalar_dtypes().flatmap(lambda dtype: npst.from_dtype(dtype).map(
    lambda value: numpy.array(value, dtype=dtype)[()])))
def test_numpy_scalars_keep_their_type(scalar: numpy.generic) -> None:
    back = round_trip(scalar)
    assert type(back) is type(scalar) and back.dtype == scalar.dtype
    assert numpy.asarray(back).tobytes() == numpy.asarray(scalar).tobytes()


def test_numpy_float64_does_not_become_float() -> None:
    assert type(round_trip(numpy.float64(1.5))) is numpy.float64
    assert type(round_trip(1.5)) is float


def same_frame(a, b) -> bool:
    """Tell whether two pandas objects are equal with the same dtypes, index and labels."""
    if type(a) is not type(b) or not a.equals(b) or not a.index.equals(b.index):
        return False
    if a.index.dtype != b.index.dtype or type(a.index) is not type(b.index):
        return False
    if isinstance(a, pandas.DataFrame):
        return list(a.dtypes) == list(b.dtypes) and a.columns.equals(b.columns) \
            and a.columns.dtype == b.columns.dtype
    return a.dtype == b.dtype and same(a.name, b.name)


frames = pdst.data_frames(
    columns=[pdst.column("ints", dtype=int), pdst.column("floats", dtype=float),
             pdst.column("text", elements=st.text(max_size=3)),
             pdst.column("flags", dtype=bool)],
    index=pdst.range_indexes(max_size=5) | pdst.indexes(dtype=int, max_size=5))


@FAST
@given(frames)
def test_dataframes_round_trip(frame: pandas.DataFrame) -> None:
    assert same_frame(frame, round_trip(frame))


@FAST
@given(pdst.series(dtype=float, index=pdst.indexes(elements=st.text(max_size=2), max_size=5),
                   name=st.none() | st.text(max_size=3)))
def test_series_round_trip(series: pandas.Series) -> None:
    assert same_frame(series, round_trip(series))


@pytest.mark.parametrize("make", [
    lambda: pandas.Series([1, None, 3], dtype="Int64", name=("a", 1)),
    lambda: pandas.Series(["x", "y", "x"], dtype="category"),
    lambda: pandas.Series(pandas.Categorical(["lo", "hi"], categories=["lo", "hi"],
                                             ordered=True)),
    lambda: pandas.Series(pandas.date_range("2024-03-01", periods=3, tz="Europe/Vienna")),
    lambda: pandas.Series(numpy.array(["2024-01-01", "NaT"], dtype="datetime64[ns]")),
    lambda: pandas.Series([True, None], dtype="boolean"),
    lambda: pandas.DataFrame({"x": [1.5, 2.5]},
                             index=pandas.MultiIndex.from_tuples([(1, "a"), (2, "b")],
                                                                 names=["n", "s"])),
    lambda: pandas.DataFrame([[1, 2]], columns=["same", "same"]),
    lambda: pandas.DataFrame({"when": pandas.to_timedelta([1, 2], unit="s")},
                             index=pandas.CategoricalIndex(["p", "q"])),
    lambda: pandas.DataFrame(),
])
def test_pandas_dtypes_and_indexes_round_trip(make) -> None:
    value = make()
    assert same_frame(value, round_trip(value))


class Thing:
    """A type the receiving side could not rebuild."""

    def __repr__(self) -> str:
        return "T" * 1000


class BadRepr:
    """A type whose repr raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no")


def test_unknown_types_become_markers() -> None:
    data = encode({"thing": Thing()})
    marker = data["v"][0][1]
    assert marker == {"untransferable": f"{__name__}.Thing", "repr": "T" * REPR_LIMIT}
    back = round_trip({"thing": Thing(), "bad": BadRepr(), "sub": MyInt(3)})
    assert back["thing"] == Untransferable(f"{__name__}.Thing", "T" * REPR_LIMIT)
    assert back["bad"] == Untransferable(f"{__name__}.BadRepr", "<repr failed: RuntimeError>")
    assert back["sub"].qualname == f"{__name__}.MyInt"
    assert isinstance(round_trip(numpy.ma.array([1])), Untransferable)


class MyInt(int):
    """An int subclass: not rebuilt as an int."""


def test_depth_limit_on_both_sides() -> None:
    deep: list = []
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(ValueEncodeError):
        encode(deep)
    data: dict = {"t": "none"}
    for _ in range(MAX_DEPTH + 5):
        data = {"t": "list", "v": [data]}
    with pytest.raises(ValueDecodeError):
        decode(data)


@pytest.mark.parametrize("data", [
    {"t": "ndarray", "dtype": "|O", "shape": [1], "v": "AAAAAAAAAAA="},
    {"t": "ndarray", "dtype": [["a", "|O"]], "shape": [1], "v": "AAAAAAAAAAA="},
    {"t": "ndarray", "dtype": "<f8", "shape": [3], "v": "AAAAAAAAAAA="},
    {"t": "ndarray", "dtype": "<f8", "shape": [-1], "v": ""},
    {"t": "npscalar", "dtype": "|O", "v": "AAAAAAAAAAA="},
    {"t": "bytes", "v": "not base64!"},
    {"t": "dict", "v": [[{"t": "list", "v": []}, {"t": "none"}]]},
    {"t": "bool", "v": 1},
    {"t": "int", "v": 5},
    {"t": "eval", "v": "__import__('os')"},
    {"t": "series", "index": {"t": "none"}, "name": {"t": "none"},
     "data": {"kind": "numpy", "v": {"t": "ndarray", "dtype": "<i8", "shape": [0], "v": ""}}},
    ["not", "tagged"],
])
def test_hostile_data_fails_with_a_decode_error(data: object) -> None:
    with pytest.raises(ValueDecodeError):
        decode(data)


@pytest.mark.parametrize("zone", ["dateutil/{file}", "dateutil/{missing}"])
@pytest.mark.parametrize("make", [
    lambda zone: {"t": "timestamp", "iso": "2024-01-01T00:00:00+00:00", "unit": "ns",
                  "tz": zone},
    lambda zone: {"t": "index", "name": {"t": "none"},
                  "data": {"kind": "extension", "dtype": f"datetime64[ns, {zone}]",
                           "v": {"t": "ndarray", "dtype": "object", "shape": [0], "items": []}}},
], ids=["timestamp", "dtype"])
def test_a_time_zone_is_never_read_from_a_host_file(tmp_path: Path, make, zone: str) -> None:
    # Read, it told whether a file is there (an error of its contents, or none at all).
    (tmp_path / "file").write_text("not a zone\n")
    data = make(zone.format(file=tmp_path / "file", missing=tmp_path / "missing"))
    with pytest.raises(ValueDecodeError, match="^a time zone is named, never read from a file$"):
        decode(data)


json_data = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["t", "v", "dtype", "shape", "items", "kind", "untransferable"])
        | st.text(max_size=3), inner, max_size=4),
    max_leaves=12)


@FAST
@given(json_data)
def test_arbitrary_json_decodes_or_fails_cleanly(data: object) -> None:
    try:
        decode(data)
    except ValueDecodeError:
        pass


def test_plain_values_do_not_import_numpy_or_pandas() -> None:
    code = ("import sys; from pipeline.sandbox.values import encode, decode; "
            "decode(encode([1, 2.5, {'a': (b'x', {3})}])); "
            "print(sorted(m for m in ('numpy', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout == "[]\n"
