"""Test names no solution can give a value for: looked-up names that are not Python expressions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.grading.errors import FieldProblem
from pipeline.grading.fields import FieldChecker, FieldPath, join_path

if TYPE_CHECKING:
    from pipeline.grading.spec import CollectionSpec

# A compared test's name is looked up in each solution's namespace, else evaluated there (§3.3);
# a name Python cannot read as an expression is found in none, so the test fails for every
# student: the engine grades it so, as the original did, but the run is the course's failure.
NOT_AN_EXPRESSION = "`{name}` is not a Python expression, so no solution can give its value " \
    "and the test fails for every student: {reason}"
# The runner evaluates a graphics test's name as an attribute path of matplotlib.pyplot.
GRAPHICS_PREFIX = "plt."


def unreadable_names(collections: Sequence[CollectionSpec],
                     path: FieldPath) -> list[FieldProblem]:
    """Return a problem for each looked-up test name that is not a Python expression (path
    leads to the list of collections)."""
    checker = FieldChecker()
    for index, collection in enumerate(collections):
        if not collection.uses_namespace or collection.type == "stdout":
            continue
        prefix = GRAPHICS_PREFIX if collection.type == "graphics" else ""
        tests = join_path(join_path(path, index), "tests")
        for position, test in enumerate(collection.tests):
            reason = syntax_error(prefix + test.name)
            if reason is not None:
                checker.fail(join_path(join_path(tests, position), "name"),
                             NOT_AN_EXPRESSION.format(name=test.name, reason=reason))
    return checker.problems


def syntax_error(expression: str) -> str | None:
    """Return why Python cannot read the expression as eval() reads it, or None."""
    try:
        # eval() drops the spaces and tabs a string starts with; compile() does not.
        compile(expression.lstrip(" \t"), "<test name>", "eval", dont_inherit=True)
    except SyntaxError as exc:
        return exc.msg
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return str(exc) or type(exc).__name__
    return None
