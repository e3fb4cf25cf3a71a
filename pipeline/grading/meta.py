"""meta.yaml: the files an assignment stages, its limits and hidden tests; unknown keys allowed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.config import MAX_SUBMISSION_LIMIT
from pipeline.grading.errors import FieldProblem, SpecError
from pipeline.grading.fields import INVALID, TOP, FieldChecker, FieldPath, describe, \
    hidden_below, join_path, path_text
from pipeline.grading.places import with_lines
from pipeline.grading.spec import read_yaml

META_FILE_NAME = "meta.yaml"
DEFAULT_BACKEND_SLUG = "python-itp"
MUST_BE_RELATIVE = "must be a relative path inside the assignment directory, got {got}"
MUST_BE_DEPENDENCY_ENTRY = "must be a path or a {{slug, version}} mapping, got {got}"
PROPERTIES = join_path(TOP, "properties")
ADDITIONAL_FILES = join_path(PROPERTIES, "additionalFiles")
TEST_FILES = join_path(PROPERTIES, "testFiles")
HIDDEN_TESTS = join_path(PROPERTIES, "hiddenTests")
TEST_DEPENDENCIES = join_path(TOP, "testDependencies")
BACKEND = join_path(PROPERTIES, "executionBackend")
SETTINGS = join_path(BACKEND, "settings")
FILE_LISTS = {"studentSubmissionFiles": "student_submission_files",
              "additionalFiles": "additional_files", "testFiles": "test_files",
              "studentTemplates": "student_templates", "hiddenTests": "hidden_tests"}
LIMITS = {"maxTestRuns": "max_test_runs", "maxSubmissions": "max_submissions",
          "maxGroupSize": "max_group_size"}
# meta.yaml takes keys it does not know, as its variants differ; but one of its fields written
# at another level, or misspelt (letter case aside), would be lost: a hiddenTests that hides
# nothing shows students the tests staff meant to hide.
TOP_FIELDS = ("properties", "testDependencies")
PROPERTY_FIELDS = (*FILE_LISTS, "executionBackend", "executionBackendSlug", *LIMITS)
SETTINGS_FIELDS = ("timeout", "memoryLimitMB")
UNDER_PROPERTIES = "under `properties`"
AT_THE_TOP = "at the top level, beside `properties`"


@dataclass(frozen=True)
class SlugDependency:
    """A test dependency named by assignment slug (resolved by the platform, not by path)."""

    slug: str
    version: str | None


@dataclass(frozen=True)
class MetaSpec:
    """What the engine uses from meta.yaml."""

    student_submission_files: tuple[str, ...] = ()
    additional_files: tuple[str, ...] = ()
    test_files: tuple[str, ...] = ()
    student_templates: tuple[str, ...] = ()
    hidden_tests: tuple[str, ...] = ()
    test_dependencies: tuple[str, ...] = ()
    slug_dependencies: tuple[SlugDependency, ...] = ()
    backend_slug: str = DEFAULT_BACKEND_SLUG
    timeout_seconds: float | None = None
    memory_mb: int | None = None
    max_test_runs: int | None = None
    max_submissions: int | None = None
    max_group_size: int = 1


def load_meta(path: Path) -> MetaSpec:
    """Read meta.yaml if it exists (defaults otherwise), or raise SpecError."""
    if not path.is_file():
        return MetaSpec()
    text, data = read_yaml(path)
    return parse_meta(data, path.name, text)


def parse_meta(data: Any, file_name: str = META_FILE_NAME, text: str | None = None) -> MetaSpec:
    """Validate the fields of loaded meta.yaml data that the engine uses (naming each problem's
    line when given the file's text)."""
    check = FieldChecker()
    meta = _parse(check, {} if data is None else data)
    if check.problems:
        # A hiddenTests entry that is not a name may still spell one out (`hiddenTests:
        # test_secret.py`): students read only where it is.
        raise SpecError(file_name, with_lines(
            hidden_below(check.problems, [HIDDEN_TESTS]), text))
    return meta


def entry_problem(path: Path, list_path: FieldPath, entry: str, problem: str) -> str:
    """Word a problem of one path listed in meta.yaml on one line, at the line of its entry:
    `meta.yaml line 3: properties.additionalFiles[1]: data.csv does not exist in week1/calc`."""
    text, data = read_yaml(path)
    items = data
    for step in list_path:
        items = items.get(step) if isinstance(items, dict) else None
    index = next((index for index, item in enumerate(items if isinstance(items, list) else [])
                  if isinstance(item, (str, int, float)) and str(item) == entry), None)
    steps = list_path if index is None else join_path(list_path, index)
    return with_lines([FieldProblem(path_text(steps), problem, steps)], text)[0].describe(
        path.name)


def _parse(check: FieldChecker, data: Any) -> MetaSpec:
    raw = check.mapping(data, TOP, TOP_FIELDS, dict.fromkeys(PROPERTY_FIELDS, UNDER_PROPERTIES),
                        others_allowed=True)
    if raw is None:
        return MetaSpec()
    props = raw.get("properties")
    props = {} if props is None else (check.mapping(
        props, PROPERTIES, PROPERTY_FIELDS, {"testDependencies": AT_THE_TOP},
        others_allowed=True) or {})
    values: dict[str, Any] = {}
    for key, attr in FILE_LISTS.items():
        if props.get(key) is not None:
            path = join_path(PROPERTIES, key)
            parse = _name if key == "hiddenTests" else _relative_path
            values[attr] = check.items(props[key], path, lambda v, p, f=parse: f(check, v, p))
    if raw.get("testDependencies") is not None:
        entries = check.items(raw["testDependencies"], TEST_DEPENDENCIES,
                              lambda v, p: _dependency(check, v, p))
        if entries is not INVALID:
            values["test_dependencies"] = tuple(e for e in entries if isinstance(e, str))
            values["slug_dependencies"] = tuple(e for e in entries
                                                if isinstance(e, SlugDependency))
    values.update(_backend(check, props))
    for key, attr in LIMITS.items():
        if props.get(key) is not None:
            values[attr] = check.integer(props[key], join_path(PROPERTIES, key), at_least=0,
                                         at_most=MAX_SUBMISSION_LIMIT)
    if INVALID in values.values():
        return MetaSpec()
    return MetaSpec(**values)


def _backend(check: FieldChecker, props: dict) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if props.get("executionBackendSlug") is not None:
        values["backend_slug"] = check.string(props["executionBackendSlug"],
                                              join_path(PROPERTIES, "executionBackendSlug"))
    backend = props.get("executionBackend")
    if backend is None:
        return values
    backend = check.mapping(backend, BACKEND, None)
    if backend is None:
        return values
    if backend.get("slug") is not None:
        values["backend_slug"] = check.string(backend["slug"], join_path(BACKEND, "slug"))
    settings = backend.get("settings")
    if settings is None:
        return values
    settings = check.mapping(settings, SETTINGS, SETTINGS_FIELDS, others_allowed=True)
    if settings is None:
        return values
    if settings.get("timeout") is not None:
        values["timeout_seconds"] = check.number(
            settings["timeout"], join_path(SETTINGS, "timeout"), at_least=0)
    if settings.get("memoryLimitMB") is not None:
        values["memory_mb"] = check.integer(
            settings["memoryLimitMB"], join_path(SETTINGS, "memoryLimitMB"), at_least=16)
    return values


def _name(check: FieldChecker, value: Any, path: FieldPath) -> Any:
    return check.string(value, path)


def _relative_path(check: FieldChecker, value: Any, path: FieldPath) -> Any:
    text = check.string(value, path)
    if text is INVALID:
        return INVALID
    pure = PurePosixPath(text)
    if pure.is_absolute() or ".." in pure.parts or "\\" in text:
        return check.fail(path, MUST_BE_RELATIVE.format(got=describe(value)))
    return text


def _dependency(check: FieldChecker, value: Any, path: FieldPath) -> Any:
    if isinstance(value, dict):
        mapping = check.mapping(value, path, ("slug", "version"))
        if mapping is None or mapping.get("slug") is None:
            return check.fail(path, MUST_BE_DEPENDENCY_ENTRY.format(got=describe(value)))
        slug = check.string(mapping["slug"], join_path(path, "slug"))
        version = None
        if mapping.get("version") is not None:
            version = check.string(mapping["version"], join_path(path, "version"))
        if INVALID in (slug, version):
            return INVALID
        return SlugDependency(slug, version)
    return _relative_path(check, value, path)
