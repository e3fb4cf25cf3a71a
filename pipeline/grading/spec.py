"""test.yaml: read, validate and resolve inheritance into frozen suite, collection, test specs."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import yaml

from pipeline.grading.course_problems import CourseProblem
from pipeline.grading.dependencies import unmet_dependencies
from pipeline.grading.errors import FieldProblem, SpecError, TextProblem
from pipeline.grading.expressions import unreadable_names
from pipeline.grading.fields import INVALID, IS_REQUIRED, TOP, FieldChecker, FieldPath, \
    hidden_below, join_path
from pipeline.grading.places import with_lines
from pipeline.grading.yaml_loaders import FastUniqueKeyLoader, UniqueKeyLoader

TEST_FILE_NAME = "test.yaml"
NOT_READABLE = "cannot be read: {reason}"
# Latin-1 or Windows-1252 text (an editor's default on some systems) shows here: `é` is 0xe9.
NOT_UTF8 = "the file is not UTF-8 text: byte 0x{byte:02x} here is not valid UTF-8; save the " \
    "file in the UTF-8 encoding"
NOT_YAML = "is not valid YAML: {reason}"
NESTED_TOO_DEEPLY = "it is nested too deeply to be read"
# A syntax error at its place (pipeline.grading.errors.TextProblem), in the parser's words, with
# what it was reading and from where: `expected ',' or ']', but got '<stream end>' (while
# parsing a flow sequence at line 1, column 4)`.
IN_CONTEXT = "{problem} ({context}{where})"
IN_CONTEXT_AT = " at line {line}, column {column}"
NOT_ALLOWED_CHARACTER = "unacceptable character #x{code:04x}: {reason}"
# The commonest YAML mistakes, as PyYAML's words for them start and as staff are told them: a tab
# where YAML reads indentation, and a line indented otherwise than the lines above it lead to (the
# parser found a field, a list item or a value where the block above had to end).
PLAIN_YAML_PROBLEMS = (
    ("found character '\\t' that cannot start any token",
     "a tab character, which YAML does not take as indentation: indent with spaces"),
    ("expected <block end>, but found ",
     "this line is not indented as the lines above it: a field starts exactly under the other "
     "fields it belongs with, a list item (`- `) under the other items of its list"),
)
YAML_LINE_BREAKS = "[\n\x85\u2028\u2029]"
NOT_A_REGEXP = "is not a valid regular expression: {reason}"
NEEDED_FOR = "is required for qualification {qualification}"
NEEDED_FOR_TYPE = "is required for collection type {type}"

COLLECTION_TYPES = ("variable", "error", "warning", "help", "stdout", "graphics", "structural",
                    "linting", "exist")
NAMESPACE_TYPES = ("variable", "error", "warning", "help", "stdout", "graphics")
# The types that check the student's `file` (§3.4): without one they have nothing to check.
FILE_TYPES = ("structural", "linting", "exist")
QUALIFICATIONS = ("verifyEqual", "matches", "contains", "startsWith", "endsWith", "count",
                  "regexp")

SUITE_DEFAULTS = {"type": "python", "name": "Python Test Suite",
                  "description": "Checks subtests and graphics", "version": "1.0"}
PROPERTY_DEFAULTS = {
    "qualification": "verifyEqual",
    "successMessage": "Congratulations! All tests passed",
    "failureMessage": "Some or all tests failed",
    "relativeTolerance": 1e-12,
    "absoluteTolerance": 1e-4,
    "timeout": 180.0,
    "allowedOccuranceRange": (0, 0),
    "occuranceType": "NAME",
    "typeCheck": True,
    "shapeCheck": True,
}
# Inherited suite -> collection -> test; successMessage/failureMessage are never inherited.
TEST_INHERITED = ("qualification", "relativeTolerance", "absoluteTolerance",
                  "allowedOccuranceRange", "occuranceType", "typeCheck", "shapeCheck", "verbosity")
COLLECTION_ONLY_INHERITED = ("timeout", "storeGraphicsArtifacts", "competency")
COMMON_FIELDS = TEST_INHERITED + ("successMessage", "failureMessage")
SUITE_FIELDS = ("type", "name", "description", "version", "properties")
PROPERTY_FIELDS = COMMON_FIELDS + COLLECTION_ONLY_INHERITED + ("tests",)
COLLECTION_FIELDS = (("type", "name", "description", "id", "entryPoint", "file", "setUpCode",
                      "tearDownCode", "inputAnswers", "moduleBlacklist", "successDependency",
                      "setUpCodeDependency") + COLLECTION_ONLY_INHERITED + COMMON_FIELDS
                     + ("tests",))
TEST_FIELDS = ("name", "value", "evalString", "pattern", "countRequirement") + COMMON_FIELDS
COLLECTIONS_PATH: FieldPath = ("properties", "tests")
TEST_ONLY_FIELDS = ("value", "evalString", "pattern", "countRequirement")
# Where a field put one level off belongs: staff most often write a collection's `type` on a test.
ON_THE_COLLECTION = "on the collection, beside its `name` and `tests`, not on one of its tests"
ON_A_TEST = "on a test, an item of the collection's `tests`"
MISPLACED_ON_TEST = {name: ON_THE_COLLECTION for name in COLLECTION_FIELDS
                     if name not in TEST_FIELDS}
MISPLACED_ON_COLLECTION = {name: ON_A_TEST for name in TEST_ONLY_FIELDS}
# Fields the engine would ignore where they stand: a grade then is not what staff meant.
NAME_TAKEN = "`{name}` is also the name of collection {number}: give each collection its own " \
    "name, as hiddenTests and the linting output files tell collections apart by it"
PATTERN_UNUSED = "is used by the qualifications matches, contains, startsWith, endsWith, count " \
    "and regexp, but this test's qualification is verifyEqual, which compares with the " \
    "reference's value and ignores the pattern: set the qualification the pattern is for, " \
    "or remove the pattern"
EVAL_STRING_UNUSED = "is ignored when the test also has a `value`, which is the expected value " \
    "then: keep only one of them"


@dataclass(frozen=True)
class TestSpec:
    """One test of a collection, with every inherited field resolved."""

    __test__ = False

    name: str
    value: Any
    eval_string: str | None
    pattern: str | None
    count_requirement: int | None
    qualification: str
    relative_tolerance: float
    absolute_tolerance: float
    allowed_occurance_range: tuple[int, int]
    occurance_type: str
    type_check: bool
    shape_check: bool
    verbosity: int | None
    success_message: str | None
    failure_message: str | None


@dataclass(frozen=True)
class CollectionSpec:
    """One test collection (a main test), with every inherited field resolved."""

    type: str
    name: str
    description: str | None
    id: str | None
    entry_point: str | None
    file: str | None
    set_up_code: tuple[str, ...]
    tear_down_code: tuple[str, ...]
    input_answers: tuple[str, ...]
    module_blacklist: tuple[str, ...]
    success_dependency: tuple[str | int, ...]
    set_up_code_dependency: str | None
    timeout: float
    store_graphics_artifacts: bool | None
    competency: str | None
    verbosity: int | None
    success_message: str | None
    failure_message: str | None
    tests: tuple[TestSpec, ...]
    has_set_up_code: bool = False
    has_tear_down_code: bool = False

    @property
    def uses_namespace(self) -> bool:
        """Tell whether the tests read values from the solution namespace or output."""
        return self.type in NAMESPACE_TYPES

    @property
    def checks_file(self) -> bool:
        """Tell whether the tests check the student's `file` (other types leave it unused)."""
        return self.type in FILE_TYPES


@dataclass(frozen=True)
class SuiteSpec:
    """A whole test.yaml: suite fields, properties and the resolved collections."""

    type: str
    name: str
    description: str
    version: str
    qualification: str
    success_message: str
    failure_message: str
    relative_tolerance: float
    absolute_tolerance: float
    timeout: float
    store_graphics_artifacts: bool | None
    competency: str | None
    verbosity: int | None
    collections: tuple[CollectionSpec, ...] = field(default=())
    # The course's mistakes that leave the file gradable as the original graded it, but make its
    # runs the course's failure, never scored (dependencies no run can meet, test names that
    # are not Python), one each.
    course_problems: tuple[CourseProblem, ...] = ()


def load_test_suite(path: Path, hidden: Collection[str] = ()) -> SuiteSpec:
    """Read and validate a test.yaml file, or raise SpecError naming file, line, field, problem
    (hidden: the names of the collections hidden from students, whose problems they read only
    the place of)."""
    text, data = read_yaml(path)
    return parse_test_suite(data, path.name, text, hidden)


def read_yaml(path: Path) -> tuple[str, Any]:
    """Load one YAML file: its text and its data. Unreadable or malformed files are SpecError.

    Besides YAML's own errors, a value YAML cannot build (`2024-02-30`, an integer of more
    digits than Python converts) raises ValueError, and nesting deeper than the parser's
    recursion allows raises RecursionError: the file is as invalid.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        # An OSError's text names the file where it lies on this host; its strerror does not.
        raise SpecError(path.name, [FieldProblem("(file)", NOT_READABLE.format(
            reason=exc.strerror or exc))]) from None
    try:
        text = _universal_newlines(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SpecError(path.name, [_not_utf8(data, exc)]) from None
    try:
        return text, yaml.load(text, Loader=FastUniqueKeyLoader)
    except yaml.YAMLError:
        pass
    except (ValueError, RecursionError) as exc:
        raise _not_yaml(path, text, exc) from None
    try:
        return text, yaml.load(text, Loader=UniqueKeyLoader)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise _not_yaml(path, text, exc) from None


def _universal_newlines(text: str) -> str:
    """Return text with its line breaks as a file read in text mode has them."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _not_utf8(data: bytes, exc: UnicodeDecodeError) -> TextProblem:
    """Place the first byte that is not UTF-8 at its line and column, as an editor shows them."""
    lines = _universal_newlines(data[:exc.start].decode("utf-8")).split("\n")
    return TextProblem(len(lines), len(lines[-1]) + 1, NOT_UTF8.format(byte=data[exc.start]))


def _not_yaml(path: Path, text: str, exc: Exception) -> SpecError:
    """Word why a file is not YAML on one line, at its line and column where the parser says."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark, problem = exc.problem_mark, _one_line(exc.problem or "")
        plain = next((plain for words, plain in PLAIN_YAML_PROBLEMS if problem.startswith(words)),
                     None)
        if plain is not None:
            return SpecError(path.name, [TextProblem(mark.line + 1, mark.column + 1, plain)])
        if exc.context:
            at = exc.context_mark
            where = "" if at is None or (at.line, at.column) == (mark.line, mark.column) \
                else IN_CONTEXT_AT.format(line=at.line + 1, column=at.column + 1)
            problem = IN_CONTEXT.format(problem=problem, context=_one_line(exc.context),
                                        where=where)
        return SpecError(path.name, [TextProblem(mark.line + 1, mark.column + 1, problem)])
    if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.character, int):
        # The reader gives the character's position in the text; YAML's line breaks place it.
        lines = re.split(YAML_LINE_BREAKS, text[:exc.position])
        return SpecError(path.name, [TextProblem(len(lines), len(lines[-1]) + 1,
                                                 NOT_ALLOWED_CHARACTER.format(
                                                     code=exc.character, reason=exc.reason))])
    reason = NESTED_TOO_DEEPLY if isinstance(exc, RecursionError) else _one_line(str(exc))
    return SpecError(path.name, [FieldProblem("(file)", NOT_YAML.format(reason=reason))])


def _one_line(text: str) -> str:
    return " ".join(text.split())


def parse_test_suite(data: Any, file_name: str = TEST_FILE_NAME, text: str | None = None,
                     hidden: Collection[str] = ()) -> SuiteSpec:
    """Validate loaded test.yaml data and resolve inheritance, or raise SpecError (naming each
    problem's line when given the file's text; a problem in a collection named in hidden, or
    naming one, tells of a hidden test)."""
    checker = FieldChecker()
    suite = _SuiteParser(checker).parse(data)
    hidden_collections = [join_path(COLLECTIONS_PATH, index)
                          for index, name in enumerate(collection_names(data))
                          if name in hidden]
    if checker.problems:
        raise SpecError(file_name, with_lines(hidden_below(checker.problems,
                                                           hidden_collections), text))
    found = with_lines(hidden_below(
        unmet_dependencies(suite.collections, COLLECTIONS_PATH, frozenset(hidden))
        + unreadable_names(suite.collections, COLLECTIONS_PATH), hidden_collections), text)
    return replace(suite, course_problems=tuple(
        problem.course_problem(file_name)
        for problem in sorted(found, key=lambda problem: problem.line or 0)))


def collection_names(data: Any) -> list[str | None]:
    """Return the name of each collection of test.yaml data as meta.yaml hiddenTests names it
    (a number as its text), None where it has none."""
    properties = data.get("properties") if isinstance(data, dict) else None
    collections = properties.get("tests") if isinstance(properties, dict) else None
    if not isinstance(collections, list):
        return []
    names = [item.get("name") if isinstance(item, dict) else None for item in collections]
    return [str(name) if isinstance(name, (str, int, float)) and not isinstance(name, bool)
            else None for name in names]


def _given(value: Any) -> bool:
    """Tell whether a converted field was given a valid value."""
    return value is not None and value is not INVALID


class _SuiteParser:
    """Turn raw YAML data into specs, recording every problem in the checker."""

    def __init__(self, checker: FieldChecker) -> None:
        self.check = checker
        self.numbers_by_name: dict[str, int] = {}

    def parse(self, data: Any) -> SuiteSpec | None:
        raw = {} if data is None else self.check.mapping(data, TOP, SUITE_FIELDS)
        if raw is None:
            return None
        top = self._fields(raw, TOP, SUITE_FIELDS[:4])
        top = {key: SUITE_DEFAULTS[key] if value is None else value for key, value in top.items()}
        props_raw = raw.get("properties")
        props_path = join_path(TOP, "properties")
        props_raw = {} if props_raw is None else self.check.mapping(props_raw, props_path,
                                                                    PROPERTY_FIELDS)
        if props_raw is None:
            return None
        props = self._fields(props_raw, props_path, COMMON_FIELDS + COLLECTION_ONLY_INHERITED)
        props = {**PROPERTY_DEFAULTS, **{k: v for k, v in props.items() if v is not None}}
        tests_raw = props_raw.get("tests")
        collections = () if tests_raw is None else self.check.items(
            tests_raw, COLLECTIONS_PATH,
            lambda item, path: self._collection(item, path, props))
        if INVALID in top.values() or INVALID in props.values() or collections is INVALID:
            return None
        return SuiteSpec(
            type=top["type"], name=top["name"], description=top["description"],
            version=top["version"], qualification=props["qualification"],
            success_message=props["successMessage"], failure_message=props["failureMessage"],
            relative_tolerance=props["relativeTolerance"],
            absolute_tolerance=props["absoluteTolerance"], timeout=props["timeout"],
            store_graphics_artifacts=props.get("storeGraphicsArtifacts"),
            competency=props.get("competency"), verbosity=props.get("verbosity"),
            collections=collections)

    def _collection(self, item: Any, path: FieldPath, props: dict) -> Any:
        raw = self.check.mapping(item, path, COLLECTION_FIELDS, MISPLACED_ON_COLLECTION)
        if raw is None:
            return INVALID
        own = self._fields(raw, path, COLLECTION_FIELDS[:-1], collection=True)
        if own.get("name") is None:
            own["name"] = self.check.fail(join_path(path, "name"), IS_REQUIRED)
        elif own["name"] is not INVALID:
            own["name"] = self._own_name(own["name"], path)
        if own.get("type") in FILE_TYPES and own.get("file") is None:
            own["file"] = self.check.fail(join_path(path, "file"),
                                          NEEDED_FOR_TYPE.format(type=own["type"]))
        resolved = dict(own)
        for key in TEST_INHERITED + COLLECTION_ONLY_INHERITED:
            if resolved.get(key) is None:
                resolved[key] = props.get(key)
        if raw.get("tests") is None:
            self.check.fail(join_path(path, "tests"), IS_REQUIRED)
            tests = INVALID
        else:
            tests = self.check.items(raw["tests"], join_path(path, "tests"),
                                     lambda t, p: self._test(t, p, resolved))
        if INVALID in resolved.values() or tests is INVALID:
            return INVALID
        return CollectionSpec(
            type=resolved.get("type") or "variable", name=resolved["name"],
            description=resolved.get("description"), id=resolved.get("id"),
            entry_point=resolved.get("entryPoint"), file=resolved.get("file"),
            set_up_code=resolved.get("setUpCode") or (),
            tear_down_code=resolved.get("tearDownCode") or (),
            input_answers=resolved.get("inputAnswers") or (),
            module_blacklist=resolved.get("moduleBlacklist") or (),
            success_dependency=resolved.get("successDependency") or (),
            set_up_code_dependency=resolved.get("setUpCodeDependency"),
            timeout=resolved["timeout"],
            store_graphics_artifacts=resolved.get("storeGraphicsArtifacts"),
            competency=resolved.get("competency"), verbosity=resolved.get("verbosity"),
            success_message=resolved.get("successMessage"),
            failure_message=resolved.get("failureMessage"), tests=tests,
            has_set_up_code=resolved.get("setUpCode") is not None,
            has_tear_down_code=resolved.get("tearDownCode") is not None)

    def _test(self, item: Any, path: FieldPath, collection: dict) -> Any:
        raw = self.check.mapping(item, path, TEST_FIELDS, MISPLACED_ON_TEST)
        if raw is None:
            return INVALID
        own = self._fields(raw, path, TEST_FIELDS)
        if own.get("name") is None:
            self.check.fail(join_path(path, "name"), IS_REQUIRED)
            return INVALID
        for key in TEST_INHERITED:
            if own.get(key) is None:
                own[key] = collection.get(key)
        compared = (collection.get("type") or "variable") in NAMESPACE_TYPES
        qualification = own["qualification"]
        if compared and qualification not in (None, "verifyEqual", INVALID) \
                and own.get("pattern") is not INVALID:
            own["pattern"] = self._pattern(qualification, own.get("pattern"),
                                           join_path(path, "pattern"))
        if compared and qualification == "verifyEqual" and _given(own.get("pattern")):
            own["pattern"] = self.check.fail(join_path(path, "pattern"), PATTERN_UNUSED)
        if raw.get("value") is not None and _given(own.get("evalString")):
            own["evalString"] = self.check.fail(join_path(path, "evalString"),
                                                EVAL_STRING_UNUSED)
        if compared and qualification == "count" and own.get("countRequirement") is None:
            own["countRequirement"] = self.check.fail(
                join_path(path, "countRequirement"), NEEDED_FOR.format(qualification="count"))
        if INVALID in own.values():
            return INVALID
        return TestSpec(
            name=own["name"], value=raw.get("value"), eval_string=own.get("evalString"),
            pattern=own.get("pattern"), count_requirement=own.get("countRequirement"),
            qualification=own["qualification"], relative_tolerance=own["relativeTolerance"],
            absolute_tolerance=own["absoluteTolerance"],
            allowed_occurance_range=own["allowedOccuranceRange"],
            occurance_type=own["occuranceType"], type_check=own["typeCheck"],
            shape_check=own["shapeCheck"], verbosity=own.get("verbosity"),
            success_message=own.get("successMessage"), failure_message=own.get("failureMessage"))

    def _own_name(self, name: str, path: FieldPath) -> Any:
        """Return the name of the collection at path, or fail it where a collection above has
        it already."""
        number = cast(int, path[-1]) + 1
        first = self.numbers_by_name.setdefault(name, number)
        if first != number:
            return self.check.fail(join_path(path, "name"), NAME_TAKEN.format(name=name,
                                                                              number=first))
        return name

    def _pattern(self, qualification: str, pattern: str | None, path: FieldPath) -> Any:
        """Return the pattern a qualification other than verifyEqual tests against; a missing
        one, or a regexp pattern re cannot compile, is the course's error."""
        if pattern is None:
            return self.check.fail(path, NEEDED_FOR.format(qualification=qualification))
        if qualification != "regexp":
            return pattern
        try:
            re.compile(pattern)
        except (re.error, RecursionError, OverflowError, ValueError) as exc:
            return self.check.fail(path, NOT_A_REGEXP.format(reason=exc))
        return pattern

    def _fields(self, raw: dict, path: FieldPath, names: tuple[str, ...],
                collection: bool = False) -> dict:
        """Convert the present, non-null fields among names; absent ones stay None."""
        return {name: self._convert(name, raw.get(name), join_path(path, name), collection)
                for name in names if name != "value"}

    def _convert(self, name: str, value: Any, path: FieldPath, collection: bool) -> Any:
        if value is None:
            return None
        check = self.check
        if name == "version":
            return check.version(value, path)
        if name == "type" and collection:
            return check.choice(value, path, COLLECTION_TYPES)
        if name == "qualification":
            return check.choice(value, path, QUALIFICATIONS)
        if name == "relativeTolerance":
            return check.number(value, path, above=0)
        if name in ("absoluteTolerance", "timeout"):
            return check.number(value, path, at_least=0)
        if name == "allowedOccuranceRange":
            return check.int_pair(value, path)
        if name == "occuranceType":
            return check.token_type(value, path)
        if name in ("typeCheck", "shapeCheck", "storeGraphicsArtifacts"):
            return check.boolean(value, path)
        if name == "verbosity":
            return check.integer(value, path, at_least=0, at_most=3)
        if name == "countRequirement":
            return check.integer(value, path, at_least=0)
        if name == "inputAnswers":
            # An empty answer is an empty line the program reads (the original never refused it).
            return check.string_list(value, path, may_be_empty=True)
        if name in ("setUpCode", "tearDownCode", "moduleBlacklist"):
            return check.string_list(value, path)
        if name == "successDependency":
            return check.dependency_list(value, path)
        return check.string(value, path)
