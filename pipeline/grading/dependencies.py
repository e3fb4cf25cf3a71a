"""Where a collection's successDependency and setUpCodeDependency lead, and which never can."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pipeline.grading.errors import FieldProblem
from pipeline.grading.fields import FieldChecker, FieldPath, join_path

if TYPE_CHECKING:
    from pipeline.grading.spec import CollectionSpec

# Dependencies that can never be met (§3.2 steps 1 and 2): the engine grades them as the original
# did (their tests fail or are skipped for every student), but such a run is the course's failure.
NAMES_NO_COLLECTION = "`{dependency}` names no collection: {ids}"
NOT_AN_ID = "it is neither a collection's id ({ids}) nor a number from 1 to {count}"
NO_IDS = "no collection has an id, and it is not a number from 1 to {count}"
NAMES_ITSELF = "`{dependency}` names this collection, which has no results yet when its tests " \
    "run, so they are skipped for every student; name a collection above it"
NAMES_A_LATER_ONE = "`{dependency}` names collection {number} (`{name}`), which runs after " \
    "this one and so has no results yet: this collection's tests are skipped for every " \
    "student; name a collection above it"
NAMESPACE_OF_A_LATER_ONE = "`{dependency}` names collection {number} (`{name}`), which runs " \
    "after this one and so has no namespace yet: this collection's tests fail for every " \
    "student; name a collection above it"
NAMESPACE_NEVER_MADE = "`{dependency}` names collection {number} (`{name}`), which has no " \
    "tests and so never runs to make a namespace: this collection's tests fail for every " \
    "student; name a collection with tests"


def resolve_dependency(collections: Sequence[CollectionSpec], dependency: Any) -> int | None:
    """Return the 0-based index a dependency names: a collection id first, else a 1-based index."""
    for index, collection in enumerate(collections):
        if collection.id is not None and dependency == collection.id:
            return index
    try:
        number = int(dependency)
    except (TypeError, ValueError):
        return None
    return number - 1 if 0 < number <= len(collections) else None


def unmet_dependencies(collections: Sequence[CollectionSpec], path: FieldPath,
                       hidden: frozenset[str] = frozenset()) -> list[FieldProblem]:
    """Return a problem for each dependency that no student's run can meet (path leads to the
    list of collections); one naming a collection in hidden, or listing the ids among which
    one of them is, tells of a hidden test."""
    checker = FieldChecker()
    for index, collection in enumerate(collections):
        if not collection.tests:  # never gated: its dependencies stop nothing
            continue
        where = join_path(path, index)
        for dependency in collection.success_dependency:
            problem = _success_problem(collections, index, dependency)
            if problem is not None:
                checker.fail(join_path(where, "successDependency"), problem,
                             hidden=_names_hidden(collections, dependency, hidden))
        dependency = collection.set_up_code_dependency
        if dependency is not None:
            problem = _namespace_problem(collections, index, dependency)
            if problem is not None:
                checker.fail(join_path(where, "setUpCodeDependency"), problem,
                             hidden=_names_hidden(collections, dependency, hidden))
    return checker.problems


def _names_hidden(collections: Sequence[CollectionSpec], dependency: Any,
                  hidden: frozenset[str]) -> bool:
    """Tell whether the problem of a dependency names a hidden collection: the one it leads
    to, or, when it leads to none, one whose id the problem lists."""
    target = resolve_dependency(collections, dependency)
    if target is not None:
        return collections[target].name in hidden
    return any(collection.id is not None and collection.name in hidden
               for collection in collections)


def _success_problem(collections: Sequence[CollectionSpec], index: int,
                     dependency: Any) -> str | None:
    target = resolve_dependency(collections, dependency)
    if target is None:
        return _names_no_collection(collections, dependency)
    if not collections[target].tests:  # no results, so none that did not pass: always met
        return None
    if target == index:
        return NAMES_ITSELF.format(dependency=dependency)
    if target > index:
        return NAMES_A_LATER_ONE.format(dependency=dependency, number=target + 1,
                                        name=collections[target].name)
    return None


def _namespace_problem(collections: Sequence[CollectionSpec], index: int,
                       dependency: Any) -> str | None:
    target = resolve_dependency(collections, dependency)
    if target is None:
        return _names_no_collection(collections, dependency)
    if target > index:
        return NAMESPACE_OF_A_LATER_ONE.format(dependency=dependency, number=target + 1,
                                               name=collections[target].name)
    if target < index and not collections[target].tests:
        return NAMESPACE_NEVER_MADE.format(dependency=dependency, number=target + 1,
                                           name=collections[target].name)
    return None


def _names_no_collection(collections: Sequence[CollectionSpec], dependency: Any) -> str:
    ids = [collection.id for collection in collections if collection.id is not None]
    count = len(collections)
    return NAMES_NO_COLLECTION.format(dependency=dependency, ids=NOT_AN_ID.format(
        ids=", ".join(ids), count=count) if ids else NO_IDS.format(count=count))
