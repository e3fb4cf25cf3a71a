"""Standard library values (Counter, deque, namedtuple, datetime, Decimal, Fraction, memoryview)
out of real sandboxed runs: compared as the original engine compared them in one process."""

from __future__ import annotations

import pytest

from pipeline.grading import grade
from tests.grading.builders import make_assignment, outcomes

STUDENT = {"ex.py": """
    from collections import Counter, OrderedDict, defaultdict, deque, namedtuple
    from datetime import date, datetime, timedelta, tzinfo
    from decimal import Decimal
    from fractions import Fraction
    from zoneinfo import ZoneInfo

    class OwnZone(tzinfo):
        def utcoffset(self, moment):
            return timedelta(hours=2)

    Point = namedtuple("Point", "x y")
    Pair = namedtuple("Pair", "x y")
    counts = Counter("hello")
    counts_vs_dict = Counter({"a": 1})
    counts_off = Counter({"a": 2})
    ordered = OrderedDict([("b", 1), ("a", 2)])
    grouped = defaultdict(list, {"a": [1.0]})
    window = deque([1.0, 2.0], maxlen=2)
    window_len = deque([1])
    point = Point(1.0, 2.0)
    pair = Pair(1, 2)
    day = date(2024, 2, 29)
    meeting = datetime(2024, 3, 1, 9, 0, tzinfo=ZoneInfo("Europe/Vienna"))
    late = datetime(2024, 3, 1, 9, 1)
    wait = timedelta(minutes=90)
    price = Decimal("0.10")
    price_vs_float = Decimal("0.5")
    total_vs_float = Decimal("0.3")
    third = Fraction(1, 3)
    raw = memoryview(b"abc")
    raw_len = memoryview(b"ab")
    odd_zone = datetime(2024, 1, 1, tzinfo=OwnZone())
"""}
REFERENCE = {"ex.py": """
    from collections import Counter, OrderedDict, defaultdict, deque
    from datetime import date, datetime, timedelta, timezone
    from decimal import Decimal
    from fractions import Fraction
    from typing import NamedTuple

    class Point(NamedTuple):
        x: float
        y: float

    counts = Counter("hello")
    counts_vs_dict = {"a": 1}
    counts_off = Counter({"a": 3})
    ordered = OrderedDict([("a", 2), ("b", 1)])
    grouped = defaultdict(lambda: [], {"a": [1.0 + 1e-9]})
    window = deque([1.0, 2.0])
    window_len = deque([1, 2])
    point = Point(1.0, 2.0)
    pair = Point(1, 2)
    day = date(2024, 2, 29)
    meeting = datetime(2024, 3, 1, 8, 0, tzinfo=timezone.utc)
    late = datetime(2024, 3, 1, 9, 0)
    wait = timedelta(hours=1.5)
    price = Decimal("0.1")
    price_vs_float = 0.5
    total_vs_float = 0.1 + 0.2
    third = 1 / 3
    raw = memoryview(b"abd")
    raw_len = memoryview(b"abc")
    odd_zone = datetime(2024, 1, 1)
"""}
TYPED = ["counts", "counts_vs_dict", "counts_off", "ordered", "grouped", "window", "window_len",
         "point", "pair", "day", "meeting", "late", "wait", "price", "price_vs_float", "third",
         "raw", "raw_len", "odd_zone"]
UNTYPED = ["counts_vs_dict", "price_vs_float", "total_vs_float", "third"]
TEST_YAML = f"""
    properties:
      tests:
        - name: typed
          entryPoint: ex.py
          tests: [{", ".join(f"{{name: {name}}}" for name in TYPED)}]
        - name: untyped
          entryPoint: ex.py
          typeCheck: false
          tests: [{", ".join(f"{{name: {name}}}" for name in UNTYPED)}]
        - name: yaml
          entryPoint: ex.py
          tests:
            - {{name: day, value: 2024-02-29}}
            - {{name: late, value: 2024-03-01 09:01:00}}
"""
INCORRECT = "E   AssertionError: Variable `{name}` has incorrect "
# What the original engine gave comparing these values in one process (a namedtuple aside: there,
# the student's class and the reference's always differed, so its type check always failed).
EXPECTED = {
    ("typed", "counts"): ("PASSED", None),
    ("typed", "counts_vs_dict"): ("FAILED", INCORRECT.format(name="counts_vs_dict") + (
        "type, expected: <class 'dict'>, obtained <class 'collections.Counter'>")),
    ("typed", "counts_off"): ("FAILED", INCORRECT.format(name="counts_off") + (
        "value (`Counter({'...` instead of `Counter({'...`)")),
    ("typed", "ordered"): ("PASSED", None),  # keys compared as pytest.approx does, in any order
    ("typed", "grouped"): ("PASSED", None),  # within the tolerance; factories are not compared
    ("typed", "window"): ("PASSED", None),  # maxlen is not compared
    ("typed", "window_len"): ("FAILED", INCORRECT.format(name="window_len") + (
        "value (`deque([1])` instead of `deque([1, ...`)")),
    ("typed", "point"): ("PASSED", None),
    ("typed", "pair"): ("FAILED", INCORRECT.format(name="pair") + (
        "type, expected: <class '__main__.Point'>, obtained <class '__main__.Pair'>")),
    ("typed", "day"): ("PASSED", None),
    ("typed", "meeting"): ("PASSED", None),  # the same instant in another zone
    ("typed", "late"): ("FAILED", INCORRECT.format(name="late") + (
        "value (`2024-03-01...` instead of `2024-03-01...`)")),
    ("typed", "wait"): ("PASSED", None),
    ("typed", "price"): ("PASSED", None),  # Decimal("0.10") == Decimal("0.1")
    ("typed", "price_vs_float"): ("FAILED", INCORRECT.format(name="price_vs_float") + (
        "type, expected: <class 'float'>, obtained <class 'decimal.Decimal'>")),
    ("typed", "third"): ("FAILED", INCORRECT.format(name="third") + (
        "type, expected: <class 'float'>, obtained <class 'fractions.Fraction'>")),
    ("typed", "raw"): ("FAILED", INCORRECT.format(name="raw") + (
        "value (`<memory at...` instead of `<memory at...`)")),
    ("typed", "raw_len"): ("FAILED", INCORRECT.format(name="raw_len") + (
        "len, expected: 3, obtained 2")),
    ("typed", "odd_zone"): ("FAILED", (
        "E   Failed: Variable `odd_zone` of type datetime.datetime cannot be compared with the "
        "expected value: the time zone of a datetime.datetime, a builtins.OwnZone, cannot be "
        "rebuilt: only datetime.timezone and zoneinfo.ZoneInfo zones can")),
    ("untyped", "counts_vs_dict"): ("PASSED", None),
    ("untyped", "price_vs_float"): ("PASSED", None),  # Decimal("0.5") == 0.5
    # Not equal, and a float minus a Decimal raises, as in pytest.approx.
    ("untyped", "total_vs_float"): ("FAILED", "E   TypeError: unsupported operand type(s) for "
                                              "-: 'float' and 'decimal.Decimal'"),
    ("untyped", "third"): ("PASSED", None),  # within the tolerance of 1 / 3
    # YAML reads these values as a date and a datetime.
    ("yaml", "day"): ("PASSED", None),
    ("yaml", "late"): ("PASSED", None),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory):
    student, reference = make_assignment(tmp_path_factory.mktemp("standard"), TEST_YAML,
                                         REFERENCE, STUDENT)
    return grade(student, reference)


@pytest.mark.parametrize("test", EXPECTED, ids="/".join)
def test_standard_library_values_compare_as_in_one_process(graded, test) -> None:
    assert outcomes(graded)[test] == EXPECTED[test]


def test_failed_values_are_shown_as_python_writes_them(graded) -> None:
    shown = {test.name: (test.debug.get("actual"), test.debug["expected"])
             for test in graded.tests[0].tests if test.debug}
    assert shown["counts_off"] == ("Counter({'a': 2})", "Counter({'a': 3})")
    assert shown["pair"] == ("Pair(x=1, y=2)", "Point(x=1, y=2)")
    assert shown["late"] == ("datetime.datetime(2024, 3, 1, 9, 1)",
                             "datetime.datetime(2024, 3, 1, 9, 0)")
