"""Lossless, type-tagged JSON form of Python, numpy and pandas values, safe to decode on the host.

``encode(value)`` returns data that ``json.dumps`` accepts; ``decode(data)`` rebuilds an equal value
of the same type. Every node is a dict with a tag ``"t"``, except a value that cannot be carried,
which encodes to ``{"untransferable": "<module.qualname>", "repr": "<cut repr>"}`` and decodes to an
``Untransferable`` marker. Exact types only: subclasses (bool aside) are untransferable, because the
receiving side could not rebuild them. A namedtuple is the exception: its class, if it changes
nothing of tuple's but its repr, travels as its name and fields, and is rebuilt once per name and
fields, so values of one shape have one type. A known type in a form that cannot be rebuilt (a
memoryview that ``memoryview.cast`` cannot make, a time zone other than a ``datetime.timezone`` or a
keyed ``ZoneInfo``) fails to encode, saying why. Standard library modules, numpy and pandas are
imported only for values (or data) that need them. Depth, node count (a range's or a RangeIndex's
elements each count, as do a MultiIndex's labels and their parts and the elements of a
CategoricalIndex or of a categorical column inside a list or dict: the host makes them to compare
it), byte size, the work of reducing fractions and the namedtuple types to make are limited on
both sides; decoding never unpickles, never builds object arrays from raw bytes nor arrays of
elements without bytes, never calls what a value names (a defaultdict's default_factory is kept
only if it is a builtin type such as list, else it is None) and never reads a time zone from a
file (a ZoneInfo is rebuilt by a key of the host's zone database), so hostile data can only fail
with ``ValueDecodeError``.
"""

from __future__ import annotations

import base64
import functools
import math
import sys

MAX_DEPTH = 100
MAX_NODES = 1_000_000
# The depth of a value's own pandas object (a variable's): a Series or DataFrame there is compared
# by its `equals`, its categorical columns by their codes; one inside a list or a dict is made an
# array of its elements, an object each for a categorical column's.
VALUE_DEPTH = 1
MAX_BYTES = 256 * 1024 * 1024
REPR_LIMIT = 200
TAG = "t"
UNTRANSFERABLE = "untransferable"
TOO_DEEP = "value nested deeper than {limit} levels"
TOO_MANY = "value has more than {limit} parts"
TOO_BIG = "value larger than {limit} bytes"
# Reducing a fraction to lowest terms (math.gcd) takes time quadratic in the bits of its longer
# term: the sum of these squares over a value's fractions is limited to about a second's work.
MAX_REDUCING = 2 ** 40
TOO_HARD = "value has fractions whose numerators or denominators are too long to rebuild"
# Each namedtuple type a value holds is made anew on the host, at a cost in time and memory that
# grows with its names (a hundred thousand types took 8 seconds and 700 MB): a value may hold so
# many types, of so many type and field names in all.
MAX_NAMEDTUPLE_TYPES = 100
MAX_NAMEDTUPLE_NAMES = 20_000
TOO_MANY_TYPES = "value has namedtuples of more than {limit} types"
TOO_MANY_TYPE_NAMES = "value has namedtuple types of more than {limit} names in all"
ZONE_UNTRANSFERABLE = "the time zone of a {kind}, a {zone}, cannot be rebuilt: only " \
    "datetime.timezone and zoneinfo.ZoneInfo zones can"
ZONE_WITHOUT_KEY = "a zoneinfo.ZoneInfo read from a file has no key to rebuild it by"
VIEW_UNREBUILDABLE = "a memoryview of format {format!r} and shape {shape} cannot be rebuilt: " \
    "{reason}"
# The default_factory a defaultdict keeps; any other is dropped (it never takes part in comparing).
DEFAULT_FACTORIES = (int, float, str, list, dict, set, tuple, bool)
# A namedtuple class defines these of tuple's and object's attributes; defining any other would
# change how its values compare, measure or print, which the rebuilt class could not.
NAMEDTUPLE_OWN = {"__new__", "__repr__", "__getnewargs__", "__doc__"}
_TUPLE_BEHAVIOUR = frozenset(name for name in {*vars(tuple), *vars(object)}
                             if name.startswith("__")) - NAMEDTUPLE_OWN
NAMEDTUPLE_REPR = "namedtuple.<locals>.__repr__"
# The module of a rebuilt namedtuple class: as for one made in a run's entry point.
NAMEDTUPLE_MODULE = "__main__"


class ValueEncodeError(ValueError):
    """A value exceeds the limits, or holds a known type in a form that cannot be rebuilt."""


class ValueDecodeError(ValueError):
    """Data is not a valid encoding (or exceeds the limits)."""


class Untransferable:
    """Stands for a value that could not leave the sandbox, written as its repr was there (cut to
    REPR_LIMIT): messages quote it as the original engine quoted the value."""

    def __init__(self, qualname: str, text: str) -> None:
        self.qualname = qualname
        self.repr = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Untransferable) and \
            (self.qualname, self.repr) == (other.qualname, other.repr)

    def __hash__(self) -> int:
        return hash((self.qualname, self.repr))

    def __repr__(self) -> str:
        return self.repr


class _Budget:
    def __init__(self, error: type[ValueError]) -> None:
        self.error = error
        self.nodes = 0
        self.bytes = 0
        self.reducing = 0
        self.namedtuple_types: set[tuple[str, ...]] = set()
        self.namedtuple_names = 0

    def node(self, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise self.error(TOO_DEEP.format(limit=MAX_DEPTH))
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.error(TOO_MANY.format(limit=MAX_NODES))

    def elements(self, sequence: range) -> None:
        """Count each element a range (or a pandas RangeIndex) stands for as a part of the value:
        its data holds three numbers, but the host makes its elements to compare it (a RangeIndex
        of 10 ** 9, as an array, took 8 GB there)."""
        self.parts(len(sequence[:MAX_NODES + 1]))

    def labels(self, count: int, levels: int) -> None:
        """Count each label of a pandas MultiIndex, and each of its levels' values, as parts of
        the value: its data holds a code of a byte or two for each, but the host makes a tuple
        of them to compare it (3 million labels of 8 MB took 190 MB there, 510 MB to compare
        two)."""
        self.parts(count * (levels + 1))

    def parts(self, count: int) -> None:
        """Count parts of the value that its data does not hold one by one: the labels of a
        MultiIndex, a range's elements, and those of a CategoricalIndex or of a categorical
        column inside a list or dict, a code of a byte or two each, of which comparing it made
        an object each in the host (5 million of 6.7 MB took 270 MB)."""
        self.nodes += count
        if self.nodes > MAX_NODES:
            raise self.error(TOO_MANY.format(limit=MAX_NODES))

    def spend(self, size: int) -> None:
        self.bytes += size
        if self.bytes > MAX_BYTES:
            raise self.error(TOO_BIG.format(limit=MAX_BYTES))

    def namedtuple(self, names: tuple[str, ...], depth: int) -> None:
        """Count each name of a namedtuple's type and fields as a part of its size, and a type
        not met before against the types a value may hold."""
        for name in names:
            self.node(depth)
            self.spend(len(name))
        if names in self.namedtuple_types:
            return
        self.namedtuple_types.add(names)
        self.namedtuple_names += len(names)
        if len(self.namedtuple_types) > MAX_NAMEDTUPLE_TYPES:
            raise self.error(TOO_MANY_TYPES.format(limit=MAX_NAMEDTUPLE_TYPES))
        if self.namedtuple_names > MAX_NAMEDTUPLE_NAMES:
            raise self.error(TOO_MANY_TYPE_NAMES.format(limit=MAX_NAMEDTUPLE_NAMES))

    def fraction(self, numerator: int, denominator: int) -> None:
        """Count the work of reducing a fraction to lowest terms."""
        bits = max(numerator.bit_length(), denominator.bit_length())
        self.reducing += bits * bits
        if self.reducing > MAX_REDUCING:
            raise self.error(TOO_HARD)


def encode(value: object) -> object:
    """Return the tagged, JSON-serialisable form of value."""
    return _Encoder().encode(value, 0)


def decode(data: object) -> object:
    """Rebuild the value that encode() described; raise ValueDecodeError on bad data."""
    try:
        return _Decoder().decode(data, 0)
    except ValueDecodeError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, ArithmeticError, AttributeError,
            ImportError, MemoryError, RecursionError) as exc:
        raise ValueDecodeError(f"invalid encoded value: {type(exc).__name__}: {exc}") from None


def qualified_name(kind: type) -> str:
    """Return module.qualname of a type."""
    return f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', kind.__name__)}"


def untransferable(value: object) -> dict:
    """Return the marker data for a value that cannot be carried."""
    try:
        text = repr(value)
    except BaseException as exc:  # a hostile __repr__ may raise anything
        text = f"<repr failed: {type(exc).__name__}>"
    if not isinstance(text, str):
        text = "<repr is not a string>"
    return {UNTRANSFERABLE: qualified_name(type(value)), "repr": text[:REPR_LIMIT]}


def _float(x: float) -> str:
    return x.hex()


def _int(x: int) -> str:
    return hex(x)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Encoder:
    def __init__(self) -> None:
        self.budget = _Budget(ValueEncodeError)

    def encode(self, value: object, depth: int) -> object:
        self.budget.node(depth)
        kind = type(value)
        simple = _SIMPLE_ENCODERS.get(kind) or _STANDARD_ENCODERS.get(_standard_name(kind))
        if simple is not None:
            return simple(self, value, depth + 1)
        fields = _namedtuple_fields(kind)
        if fields is not None:
            return self._namedtuple(value, fields, depth + 1)
        module = getattr(kind, "__module__", "") or ""
        root = module.partition(".")[0]
        if root == "numpy":
            return self._numpy(value, depth + 1)
        if root == "pandas":
            return self._pandas(value, depth + 1)
        return untransferable(value)

    def _items(self, items, depth: int) -> list:
        return [self.encode(item, depth) for item in items]

    def _string(self, tag: str, text: str) -> dict:
        self.budget.spend(len(text))
        return {TAG: tag, "v": text}

    def _bytes(self, value: bytes | bytearray, depth: int) -> dict:
        self.budget.spend(len(value))
        return {TAG: type(value).__name__, "v": _b64(bytes(value))}

    def _int(self, value: int, depth: int) -> dict:
        self.budget.spend(value.bit_length() // 8)
        return {TAG: "int", "v": _int(value)}

    def _range(self, value: range, depth: int) -> dict:
        self.budget.elements(value)
        return {TAG: "range", "v": [_int(value.start), _int(value.stop), _int(value.step)]}

    def _namedtuple(self, value: tuple, fields: tuple[str, ...], depth: int) -> dict:
        name = type(value).__name__
        self.budget.namedtuple((name, *fields), depth)
        return {TAG: "namedtuple", "name": name, "fields": list(fields),
                "v": self._items(value, depth)}

    def _pairs(self, value: dict, depth: int) -> list:
        return [[self.encode(k, depth), self.encode(v, depth)] for k, v in value.items()]

    def _defaultdict(self, value, depth: int) -> dict:
        factory = value.default_factory
        kept = next((kind.__name__ for kind in DEFAULT_FACTORIES if factory is kind), None)
        return {TAG: "defaultdict", "factory": kept, "v": self._pairs(value, depth)}

    def _fraction(self, value, depth: int) -> dict:
        terms = value.numerator, value.denominator
        self.budget.spend(sum(term.bit_length() for term in terms) // 8)
        self.budget.fraction(*terms)
        return {TAG: "fraction", "v": [_int(term) for term in terms]}

    def _zone(self, value, depth: int) -> dict:
        """Encode a time's or datetime's tzinfo: None, a datetime.timezone or a keyed ZoneInfo."""
        zone = self.encode(value.tzinfo, depth)
        if UNTRANSFERABLE in zone:
            raise ValueEncodeError(ZONE_UNTRANSFERABLE.format(kind=qualified_name(type(value)),
                                                              zone=zone[UNTRANSFERABLE]))
        return zone

    def _zoneinfo(self, value, depth: int) -> dict:
        if value.key is None:
            raise ValueEncodeError(ZONE_WITHOUT_KEY)
        self.budget.spend(len(value.key))
        return {TAG: "zoneinfo", "key": value.key}

    def _memoryview(self, value: memoryview, depth: int) -> dict:
        raw = value.tobytes()
        self.budget.spend(len(raw))
        shape = list(value.shape)
        try:
            _view(raw, value.readonly, value.format, shape)
        except (ValueError, TypeError) as exc:
            raise ValueEncodeError(VIEW_UNREBUILDABLE.format(
                format=value.format, shape=tuple(shape), reason=exc)) from None
        return {TAG: "memoryview", "format": value.format, "shape": shape,
                "readonly": value.readonly, "v": _b64(raw)}

    def _numpy(self, value: object, depth: int) -> object:
        import numpy

        if type(value) is numpy.ndarray:
            return self._ndarray(value, depth)
        if isinstance(value, numpy.generic) and not value.dtype.hasobject:
            self.budget.spend(value.dtype.itemsize)
            return {TAG: "npscalar", "dtype": _descr(value.dtype),
                    "v": _b64(numpy.asarray(value).tobytes())}
        return untransferable(value)

    def _ndarray(self, array, depth: int) -> dict:
        if array.dtype.hasobject:
            if array.dtype.fields is not None:
                return untransferable(array)
            return {TAG: "ndarray", "dtype": "object", "shape": list(array.shape),
                    "items": self._items(array.ravel(order="C").tolist(), depth)}
        self.budget.spend(array.nbytes)
        return {TAG: "ndarray", "dtype": _descr(array.dtype), "shape": list(array.shape),
                "v": _b64(array.tobytes(order="C"))}

    def _pandas(self, value: object, depth: int) -> object:
        import pandas

        kind = type(value)
        if kind is pandas.DataFrame:
            return {TAG: "dataframe", "index": self.encode(value.index, depth),
                    "columns": self.encode(value.columns, depth),
                    "data": [self._column(value.iloc[:, i], depth, depth > VALUE_DEPTH)
                             for i in range(value.shape[1])]}
        if kind is pandas.Series:
            return {TAG: "series", "index": self.encode(value.index, depth),
                    "name": self.encode(value.name, depth),
                    "data": self._column(value, depth, depth > VALUE_DEPTH)}
        if kind is pandas.RangeIndex:
            self.budget.elements(range(value.start, value.stop, value.step))
            return {TAG: "rangeindex", "v": [_int(value.start), _int(value.stop),
                                             _int(value.step)],
                    "name": self.encode(value.name, depth)}
        if kind is pandas.MultiIndex:
            self.budget.labels(len(value), value.nlevels)
            return {TAG: "multiindex", "levels": self._items(value.levels, depth),
                    "codes": self._items(value.codes, depth),
                    "names": self._items(value.names, depth)}
        if isinstance(value, pandas.Index):
            return {TAG: "index", "name": self.encode(value.name, depth),
                    "data": self._column(value, depth, True)}
        if kind is pandas.Timestamp:
            return {TAG: "timestamp", "iso": value.isoformat(), "unit": value.unit,
                    "tz": None if value.tz is None else str(value.tz)}
        if value is pandas.NA:
            return {TAG: "pandas.NA"}
        if value is pandas.NaT:
            return {TAG: "pandas.NaT"}
        return untransferable(value)

    def _column(self, column, depth: int, compared_by_element: bool) -> dict:
        """Encode the values of a Series or Index with their dtype; a categorical one's elements
        count as parts of the value when it is compared element by element."""
        import numpy
        import pandas

        dtype = column.dtype
        if isinstance(dtype, numpy.dtype):
            return {"kind": "numpy", "v": self._ndarray(column.to_numpy(), depth)}
        if isinstance(dtype, pandas.CategoricalDtype):
            if compared_by_element:
                self.budget.parts(len(column))
            return {"kind": "category", "categories": self.encode(dtype.categories, depth),
                    "codes": self._ndarray(numpy.asarray(column.array.codes), depth),
                    "ordered": bool(dtype.ordered)}
        objects = numpy.asarray(column.astype(object), dtype=object)
        return {"kind": "extension", "dtype": str(dtype), "v": self._ndarray(objects, depth)}


_SIMPLE_ENCODERS = {
    type(None): lambda self, v, d: {TAG: "none"},
    bool: lambda self, v, d: {TAG: "bool", "v": v},
    int: _Encoder._int,
    float: lambda self, v, d: {TAG: "float", "v": _float(v)},
    complex: lambda self, v, d: {TAG: "complex", "v": [_float(v.real), _float(v.imag)]},
    str: lambda self, v, d: self._string("str", v),
    bytes: _Encoder._bytes,
    bytearray: _Encoder._bytes,
    list: lambda self, v, d: {TAG: "list", "v": self._items(v, d)},
    tuple: lambda self, v, d: {TAG: "tuple", "v": self._items(v, d)},
    set: lambda self, v, d: {TAG: "set", "v": self._items(v, d)},
    frozenset: lambda self, v, d: {TAG: "frozenset", "v": self._items(v, d)},
    dict: lambda self, v, d: {TAG: "dict", "v": self._pairs(v, d)},
    range: _Encoder._range,
    memoryview: _Encoder._memoryview,
}
# Standard library types, by module.qualname: found without importing their modules (a value of
# one exists only once its module is imported).
_STANDARD_ENCODERS = {
    "collections.Counter": lambda self, v, d: {TAG: "counter", "v": self._pairs(v, d)},
    "collections.OrderedDict": lambda self, v, d: {TAG: "ordereddict", "v": self._pairs(v, d)},
    "collections.defaultdict": _Encoder._defaultdict,
    "collections.deque": lambda self, v, d: {TAG: "deque", "maxlen": v.maxlen,
                                             "v": self._items(v, d)},
    "datetime.date": lambda self, v, d: {TAG: "date", "v": [v.year, v.month, v.day]},
    "datetime.time": lambda self, v, d: {
        TAG: "time", "v": [v.hour, v.minute, v.second, v.microsecond, v.fold],
        "tz": self._zone(v, d)},
    "datetime.datetime": lambda self, v, d: {
        TAG: "datetime", "v": [v.year, v.month, v.day, v.hour, v.minute, v.second,
                               v.microsecond, v.fold], "tz": self._zone(v, d)},
    "datetime.timedelta": lambda self, v, d: {TAG: "timedelta",
                                              "v": [v.days, v.seconds, v.microseconds]},
    # (offset,) or (offset, name): the name only when one was given.
    "datetime.timezone": lambda self, v, d: {TAG: "timezone",
                                             "v": self._items(v.__getinitargs__(), d)},
    "zoneinfo.ZoneInfo": _Encoder._zoneinfo,
    "decimal.Decimal": lambda self, v, d: self._string("decimal", str(v)),
    "fractions.Fraction": _Encoder._fraction,
}


def _standard_name(kind: type) -> str | None:
    """Return the module.qualname of kind if it is one of the standard library types carried."""
    name = qualified_name(kind)
    if name not in _STANDARD_ENCODERS:
        return None
    module, _, qualname = name.rpartition(".")
    return name if getattr(sys.modules.get(module), qualname, None) is kind else None


def _namedtuple_fields(kind: type) -> tuple[str, ...] | None:
    """Return the fields of a namedtuple class (collections.namedtuple, typing.NamedTuple) that
    changes nothing of tuple's but its repr, namedtuple's own; else None."""
    namespace = kind.__dict__
    fields = namespace.get("_fields")
    if kind.__bases__ != (tuple,) or type(fields) is not tuple \
            or not all(type(field) is str for field in fields):
        return None
    code = getattr(namespace.get("__repr__"), "__code__", None)
    if getattr(code, "co_qualname", None) != NAMEDTUPLE_REPR:
        return None
    if any(name in namespace for name in _TUPLE_BEHAVIOUR):
        return None
    return fields


def _descr(dtype) -> object:
    from numpy.lib.format import dtype_to_descr

    return dtype_to_descr(dtype)


class _Decoder:
    def __init__(self) -> None:
        self.budget = _Budget(ValueDecodeError)

    def decode(self, data: object, depth: int) -> object:
        self.budget.node(depth)
        if not isinstance(data, dict):
            raise ValueDecodeError(f"expected a tagged object, got {type(data).__name__}")
        if UNTRANSFERABLE in data:
            return Untransferable(_text(data[UNTRANSFERABLE]), _text(data.get("repr", "")))
        tag = data.get(TAG)
        handler = _DECODERS.get(tag) if isinstance(tag, str) else None
        if handler is None:
            raise ValueDecodeError(f"unknown tag {tag!r}")
        return handler(self, data, depth + 1)

    def _items(self, data: dict, depth: int, key: str = "v") -> list:
        items = data[key]
        if not isinstance(items, list):
            raise ValueDecodeError(f"{key!r} must be a list")
        return [self.decode(item, depth) for item in items]

    def _str(self, data: dict, depth: int) -> str:
        text = _text(data["v"])
        self.budget.spend(len(text))
        return text

    def _hex(self, value: object) -> int:
        text = _text(value)
        self.budget.spend(len(text) // 2)
        return int(text, 16)

    def _bytes(self, data: dict, depth: int) -> bytes:
        raw = _unb64(data["v"])
        self.budget.spend(len(raw))
        return raw

    def _int(self, data: dict, depth: int) -> int:
        return self._hex(data["v"])

    def _dict(self, data: dict, depth: int) -> dict:
        pairs = data["v"]
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2
                                                  for p in pairs):
            raise ValueDecodeError("'v' of a dict must be a list of pairs")
        return {self.decode(k, depth): self.decode(v, depth) for k, v in pairs}

    def _defaultdict(self, data: dict, depth: int):
        from collections import defaultdict

        factory = data["factory"]
        if factory is not None and factory not in _FACTORIES_BY_NAME:
            raise ValueDecodeError(f"a defaultdict's factory must be one of "
                                   f"{', '.join(_FACTORIES_BY_NAME)}, or null")
        return defaultdict(_FACTORIES_BY_NAME.get(factory), self._dict(data, depth))

    def _deque(self, data: dict, depth: int):
        from collections import deque

        maxlen = data["maxlen"]
        if maxlen is not None and type(maxlen) is not int:
            raise ValueDecodeError("'maxlen' of a deque must be an integer or null")
        return deque(self._items(data, depth), maxlen)

    def _namedtuple(self, data: dict, depth: int) -> tuple:
        fields = data["fields"]
        if not isinstance(fields, list):
            raise ValueDecodeError("'fields' of a namedtuple must be a list")
        name, fields = _text(data["name"]), tuple(_text(field) for field in fields)
        self.budget.namedtuple((name, *fields), depth)
        return _namedtuple_class(name, fields)._make(self._items(data, depth))

    def _datetime(self, data: dict, depth: int):
        from datetime import datetime

        *parts, fold = _ints(data["v"], 8)
        return datetime(*parts, tzinfo=self.decode(data["tz"], depth), fold=fold)

    def _time(self, data: dict, depth: int):
        from datetime import time

        *parts, fold = _ints(data["v"], 5)
        return time(*parts, tzinfo=self.decode(data["tz"], depth), fold=fold)

    def _zoneinfo(self, data: dict, depth: int):
        from zoneinfo import ZoneInfo

        key = _text(data["key"])
        self.budget.spend(len(key))
        if key not in _zone_keys():
            raise ValueDecodeError(f"no time zone {key[:REPR_LIMIT]!r} in the time zone database")
        return ZoneInfo(key)

    def _fraction(self, data: dict, depth: int):
        from fractions import Fraction

        numerator, denominator = (self._hex(text) for text in data["v"])
        self.budget.fraction(numerator, denominator)
        return Fraction(numerator, denominator)

    def _memoryview(self, data: dict, depth: int) -> memoryview:
        raw = _unb64(data["v"])
        self.budget.spend(len(raw))
        return _view(raw, _check_bool(data["readonly"]), _text(data["format"]), _shape(data))

    def _ndarray(self, data: dict, depth: int):
        import numpy

        shape = _shape(data)
        count = math.prod(shape)
        if data["dtype"] == "object":
            items = self._items(data, depth, "items")
            if len(items) != count:
                raise ValueDecodeError("object array items do not match its shape")
            array = numpy.empty(count, dtype=object)
            for position, item in enumerate(items):
                array[position] = item
            return array.reshape(shape)
        dtype = _dtype(data["dtype"])
        if dtype.itemsize == 0 and count:
            # No bytes would bound its size: a shape of 2**60 such elements takes years to copy.
            raise ValueDecodeError("an array whose elements take no bytes cannot be rebuilt")
        raw = _unb64(data["v"])
        self.budget.spend(len(raw))
        if len(raw) != count * dtype.itemsize:
            raise ValueDecodeError("array bytes do not match its shape and dtype")
        return numpy.frombuffer(raw, dtype=dtype, count=count).reshape(shape).copy()

    def _npscalar(self, data: dict, depth: int):
        import numpy

        dtype = _dtype(data["dtype"])
        raw = _unb64(data["v"])
        if len(raw) != dtype.itemsize:
            raise ValueDecodeError("scalar bytes do not match its dtype")
        return numpy.frombuffer(raw, dtype=dtype)[0]

    def _column(self, data: dict, depth: int, compared_by_element: bool):
        import pandas

        if not isinstance(data, dict):
            raise ValueDecodeError("column data must be an object")
        kind = data.get("kind")
        if kind == "numpy":
            return self._ndarray(data["v"], depth)
        if kind == "category":
            categories = self.decode(data["categories"], depth)
            codes = self._ndarray(data["codes"], depth)
            if compared_by_element:
                self.budget.parts(len(codes))
            return pandas.Categorical.from_codes(codes, categories=categories,
                                                 ordered=bool(data["ordered"]))
        if kind == "extension":
            dtype = pandas.api.types.pandas_dtype(_no_zone_file(data["dtype"]))
            return pandas.array(self._ndarray(data["v"], depth), dtype=dtype)
        raise ValueDecodeError(f"unknown column kind {kind!r}")

    def _series(self, data: dict, depth: int):
        import pandas

        return pandas.Series(self._column(data["data"], depth, depth > VALUE_DEPTH),
                             index=self._index(data["index"], depth),
                             name=self.decode(data["name"], depth), copy=False)

    def _index(self, data: object, depth: int):
        import pandas

        index = self.decode(data, depth)
        if not isinstance(index, pandas.Index):
            raise ValueDecodeError("an index must decode to a pandas Index")
        return index

    def _dataframe(self, data: dict, depth: int):
        import pandas

        columns = data["data"]
        if not isinstance(columns, list):
            raise ValueDecodeError("'data' of a dataframe must be a list")
        index = self._index(data["index"], depth)
        labels = self._index(data["columns"], depth)
        if len(labels) != len(columns):
            raise ValueDecodeError("dataframe columns do not match its labels")
        frame = pandas.DataFrame({position: pandas.Series(
            self._column(column, depth, depth > VALUE_DEPTH), index=index, copy=False)
            for position, column in enumerate(columns)}, index=index)
        frame.columns = labels
        return frame

    def _plain_index(self, data: dict, depth: int):
        import pandas

        return pandas.Index(self._column(data["data"], depth, True),
                            name=self.decode(data["name"], depth))

    def _range(self, data: dict, depth: int) -> range:
        value = range(*(int(_text(x), 16) for x in data["v"]))
        self.budget.elements(value)
        return value

    def _rangeindex(self, data: dict, depth: int):
        import pandas

        value = self._range(data, depth)
        return pandas.RangeIndex(value.start, value.stop, value.step,
                                 name=self.decode(data["name"], depth))

    def _multiindex(self, data: dict, depth: int):
        import pandas

        levels = self._items(data, depth, "levels")
        codes = self._items(data, depth, "codes")
        self.budget.labels(max((len(level_codes) for level_codes in codes), default=0),
                           len(levels))
        return pandas.MultiIndex(levels=levels, codes=codes,
                                 names=self._items(data, depth, "names"))

    def _timestamp(self, data: dict, depth: int):
        import pandas

        stamp = pandas.Timestamp(_text(data["iso"]))
        if data["tz"] is not None:
            stamp = stamp.tz_convert(_no_zone_file(data["tz"]))
        return stamp.as_unit(_text(data["unit"]))


def _shape(data: dict) -> list[int]:
    shape = data["shape"]
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise ValueDecodeError("'shape' must be a list of counts")
    return shape


def _ints(value: object, count: int) -> list[int]:
    if not isinstance(value, list) or len(value) != count \
            or not all(type(n) is int for n in value):
        raise ValueDecodeError(f"expected a list of {count} integers")
    return value


def _view(raw: bytes, readonly: bool, item_format: str, shape: list[int]) -> memoryview:
    """Return a memoryview of raw's bytes (a copy of them if writable), of that format and shape."""
    view = memoryview(raw if readonly else bytearray(raw))
    # cast() refuses shapes with a zero in them: a flat view's shape follows from the length.
    view = view.cast(item_format) if len(shape) == 1 else view.cast(item_format, shape)
    if list(view.shape) != shape:
        raise ValueDecodeError("memoryview bytes do not match its shape and format")
    return view


def _namedtuple_class(name: str, fields: tuple[str, ...]) -> type:
    """Return the namedtuple class of this name and fields: the same one while any value of it
    lives, so that a student's and a reference's values of one shape have one type."""
    classes = _namedtuple_classes()
    kind = classes.get((name, fields))
    if kind is None:
        from collections import namedtuple

        try:
            # rename=True accepts the _0, _1 ... that it gives to invalid names in the sandbox;
            # any other invalid name is renamed, and refused below.
            kind = namedtuple(name, fields, rename=True, module=NAMEDTUPLE_MODULE)
        except SyntaxError:  # names that differ but are the same identifier once normalised
            raise ValueDecodeError("namedtuple field names must be distinct identifiers") from None
        if kind._fields != fields:
            raise ValueDecodeError("namedtuple field names must be distinct identifiers, "
                                   "not keywords, not starting with '_'")
        kind = classes.setdefault((name, fields), kind)
    return kind


@functools.cache
def _namedtuple_classes():
    """Return the namedtuple classes rebuilt so far, by name and fields, held while in use."""
    import weakref

    return weakref.WeakValueDictionary()


@functools.cache
def _zone_keys() -> frozenset[str]:
    """Return the keys of the host's time zone database: a ZoneInfo is only rebuilt by one.

    available_timezones() leaves out the posix/ and right/ (leap seconds) copies of its zones.
    """
    from zoneinfo import available_timezones

    return frozenset(f"{folder}{key}" for key in available_timezones()
                     for folder in ("", "posix/", "right/"))


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueDecodeError(f"expected a string, got {type(value).__name__}")
    return value


def _no_zone_file(value: object) -> str:
    """Return the text of a time zone or dtype, refusing one that names a zone file.

    pandas reads `dateutil/<path>` as a time zone from the file at that path: on the host,
    decoding would open any path the data names, and tell by its error whether a file is there.
    """
    text = _text(value)
    if "dateutil/" in text:
        raise ValueDecodeError("a time zone is named, never read from a file")
    return text


def _unb64(value: object) -> bytes:
    text = _text(value)
    if len(text) > MAX_BYTES * 4 // 3 + 4:
        raise ValueDecodeError(TOO_BIG.format(limit=MAX_BYTES))
    return base64.b64decode(text, validate=True)


def _dtype(descr: object):
    from numpy.lib.format import descr_to_dtype

    if not isinstance(descr, (str, list)):
        raise ValueDecodeError("bad dtype description")
    dtype = descr_to_dtype(_lists_to_tuples(descr))
    if dtype.hasobject:
        raise ValueDecodeError("object dtypes cannot be rebuilt from bytes")
    return dtype


def _lists_to_tuples(descr: object) -> object:
    """Undo JSON's turning of a structured dtype's (name, format[, shape]) tuples into lists."""
    if not isinstance(descr, list):
        return descr
    fields = []
    for field in descr:
        if not isinstance(field, list) or len(field) not in (2, 3):
            raise ValueDecodeError("bad structured dtype description")
        name = tuple(field[0]) if isinstance(field[0], list) else field[0]
        parts = [name, _lists_to_tuples(field[1])]
        if len(field) == 3:
            parts.append(tuple(field[2]) if isinstance(field[2], list) else field[2])
        fields.append(tuple(parts))
    return fields


def _fromhex(value: object) -> float:
    return float.fromhex(_text(value))


_FACTORIES_BY_NAME = {kind.__name__: kind for kind in DEFAULT_FACTORIES}
_DECODERS = {
    "none": lambda self, d, depth: None,
    "bool": lambda self, d, depth: _check_bool(d["v"]),
    "int": _Decoder._int,
    "float": lambda self, d, depth: _fromhex(d["v"]),
    "complex": lambda self, d, depth: complex(_fromhex(d["v"][0]), _fromhex(d["v"][1])),
    "str": _Decoder._str,
    "bytes": _Decoder._bytes,
    "bytearray": lambda self, d, depth: bytearray(self._bytes(d, depth)),
    "list": lambda self, d, depth: self._items(d, depth),
    "tuple": lambda self, d, depth: tuple(self._items(d, depth)),
    "set": lambda self, d, depth: set(self._items(d, depth)),
    "frozenset": lambda self, d, depth: frozenset(self._items(d, depth)),
    "dict": _Decoder._dict,
    "counter": lambda self, d, depth: __import__("collections").Counter(self._dict(d, depth)),
    "ordereddict": lambda self, d, depth: __import__("collections").OrderedDict(
        self._dict(d, depth)),
    "defaultdict": _Decoder._defaultdict,
    "deque": _Decoder._deque,
    "namedtuple": _Decoder._namedtuple,
    "date": lambda self, d, depth: __import__("datetime").date(*_ints(d["v"], 3)),
    "time": _Decoder._time,
    "datetime": _Decoder._datetime,
    "timedelta": lambda self, d, depth: __import__("datetime").timedelta(*_ints(d["v"], 3)),
    "timezone": lambda self, d, depth: __import__("datetime").timezone(*self._items(d, depth)),
    "zoneinfo": _Decoder._zoneinfo,
    "decimal": lambda self, d, depth: __import__("decimal").Decimal(self._str(d, depth)),
    "fraction": _Decoder._fraction,
    "memoryview": _Decoder._memoryview,
    "range": _Decoder._range,
    "ndarray": _Decoder._ndarray,
    "npscalar": _Decoder._npscalar,
    "series": _Decoder._series,
    "dataframe": _Decoder._dataframe,
    "index": _Decoder._plain_index,
    "rangeindex": _Decoder._rangeindex,
    "multiindex": _Decoder._multiindex,
    "timestamp": _Decoder._timestamp,
    "pandas.NA": lambda self, d, depth: __import__("pandas").NA,
    "pandas.NaT": lambda self, d, depth: __import__("pandas").NaT,
}


def _check_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueDecodeError(f"expected true or false, got {type(value).__name__}")
    return value
