"""Stage the directories a grading run uses: solution bases, test files, per-run work copies."""

from __future__ import annotations

import ast
import fnmatch
import hashlib
import os
import re
import shutil
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.grading.errors import CourseError
from pipeline.grading.fields import FieldPath
from pipeline.grading.folder_entries import folder_entries
from pipeline.grading.meta import ADDITIONAL_FILES, META_FILE_NAME, TEST_DEPENDENCIES, TEST_FILES, \
    MetaSpec, entry_problem
from pipeline.likely_names import DID_YOU_MEAN

IGNORED_NAMES = (".git", "__pycache__", ".pytest_cache")
MISSING_COURSE_FILE = "{path} does not exist in {where}"
NO_DEPENDENCY_ROOT = "{path} needs the reference repository's root, which was not given"
REFERENCE_MISSING = "the reference directory {path} does not exist"
REPOSITORY_ROOT = "the reference repository's root"
# meta.yaml testFiles land at the top of the tests' folder but in pytest mode (StagedAssignment):
# two of one name would be one file there.
SAME_TEST_FILE_NAME = ("{path} and {other} would both be {name} in the tests' folder, where "
                       "testFiles are copied by their name alone, without their folders: give one "
                       "of them another name")
# In pytest mode testFiles lie in the tests' folder, which the student's run reads and imports
# from (after the student's folder; first for a test file at its top): the whole assignment's
# folder there would hand the student's code the reference solution, and stand in for it.
WHOLE_FOLDER_TEST_FILES = ("{path} is the assignment's whole folder, the reference solution with "
                           "it, which the student's code would import and read in its run: list "
                           "the files and folders the tests need")
CODE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
# A file's name as code spells it in a string, which need not be a Python name
# ('secret-answers.txt', "data 2/table.csv"): the text between quotes on one line.
QUOTED_TEXT = re.compile(r"""(["'])([^"'\n]+)\1""")
# A test file code imports by its name alone: a module, or a folder (a package).
IMPORTED_SUFFIXES = (".py", "")


@dataclass(frozen=True)
class StagedAssignment:
    """The prepared directories of one grading: two solution bases and the test files.

    meta.yaml testFiles land at the top of tests_dir (the testDirectory on sys.path), so a test
    helper `tests/checker.py` is imported as `checker`; in pytest mode they keep their paths in
    the assignment's folder, as staff running pytest there have them. test_files lists where
    they lie in tests_dir.
    """

    student_base: Path
    reference_base: Path
    tests_dir: Path
    test_files: tuple[str, ...]


def stage_assignment(work: Path, student_dir: Path, reference_dir: Path, assignment_dir: Path,
                     meta: MetaSpec, dependency_root: Path | None,
                     keep_test_file_paths: bool = False) -> StagedAssignment:
    """Copy both solutions plus additional files and test dependencies, and the test files."""
    if not reference_dir.is_dir():
        raise CourseError(REFERENCE_MISSING.format(
            path=shown_course_path(reference_dir, dependency_root)))
    extras = _extra_files(assignment_dir, meta, dependency_root)
    student_base = work / "student-base"
    reference_base = work / "reference-base"
    if student_dir.is_dir():
        copy_tree(student_dir, student_base)
    else:
        student_base.mkdir()
    copy_tree(reference_dir, reference_base)
    for source, relative in extras:
        for base in (student_base, reference_base):
            _add_course_files(source, base, relative)
    tests_dir = work / "tests-all"
    tests_dir.mkdir()
    landed: dict[str, tuple[str, Path]] = {}
    for relative in meta.test_files:
        source = assignment_dir / relative
        if not source.exists():
            raise _listed_error(assignment_dir, TEST_FILES, relative,
                                _missing_in_assignment(assignment_dir, relative, dependency_root))
        if keep_test_file_paths and source.resolve() == assignment_dir.resolve():
            raise _listed_error(assignment_dir, TEST_FILES, relative,
                                WHOLE_FOLDER_TEST_FILES.format(path=relative))
        place = PurePosixPath(relative).as_posix() if keep_test_file_paths else source.name
        if place in landed:
            other, other_source = landed[place]
            if other_source.resolve() == source.resolve():  # one file listed twice
                continue
            raise _listed_error(assignment_dir, TEST_FILES, relative, SAME_TEST_FILE_NAME.format(
                path=relative, other=other, name=place))
        copy_path(source, tests_dir / place)
        landed[place] = relative, source
    return StagedAssignment(student_base, reference_base, tests_dir, tuple(landed))


def _extra_files(assignment_dir: Path, meta: MetaSpec,
                 dependency_root: Path | None) -> list[tuple[Path, str]]:
    extras: list[tuple[Path, str]] = []
    for relative in meta.additional_files:
        source = assignment_dir / relative
        if not source.exists():
            raise _listed_error(assignment_dir, ADDITIONAL_FILES, relative,
                                _missing_in_assignment(assignment_dir, relative, dependency_root))
        extras.append((source, relative))
    for relative in meta.test_dependencies:
        if dependency_root is None:
            raise _listed_error(assignment_dir, TEST_DEPENDENCIES, relative,
                                NO_DEPENDENCY_ROOT.format(path=relative))
        source = dependency_root / relative
        if not source.exists():
            raise _listed_error(assignment_dir, TEST_DEPENDENCIES, relative,
                                MISSING_COURSE_FILE.format(path=relative, where=REPOSITORY_ROOT))
        extras.append((source, relative))
    return extras


def _missing_in_assignment(assignment_dir: Path, relative: str,
                           dependency_root: Path | None) -> str:
    """Word a path meta.yaml lists that the assignment's folder lacks, naming the file of the
    same name it holds elsewhere, if one: the likely path meant (`data/prices.csv`)."""
    name = PurePosixPath(relative).name
    elsewhere = next((path for entry, path in folder_entries(assignment_dir, IGNORED_NAMES)
                      if entry.name == name), None)
    missing = MISSING_COURSE_FILE.format(
        path=relative, where=shown_course_path(assignment_dir, dependency_root))
    return missing + (DID_YOU_MEAN.format(name=elsewhere) if elsewhere else "")


def _listed_error(assignment_dir: Path, list_path: FieldPath, entry: str,
                  problem: str) -> CourseError:
    """Return the course error of a path meta.yaml lists, named at the line of its entry."""
    return CourseError(entry_problem(assignment_dir / META_FILE_NAME, list_path, entry, problem))


def shown_course_path(folder: Path, repository_root: Path | None) -> str:
    """Name a course folder for a course error: by its place in the reference repository.

    Course errors reach staff and students; where the repository lies on the grading host is no
    use to either. A folder outside the repository (or with none given) goes by its own name.
    """
    if repository_root is not None:
        resolved, root = folder.resolve(), repository_root.resolve()
        if resolved.is_relative_to(root):
            relative = resolved.relative_to(root).as_posix()
            return REPOSITORY_ROOT if relative == "." else relative
    return folder.name


class _CopyFailed(Exception):
    """A file of a tree could not be copied: carries its OSError past shutil.copytree."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error


def copy_tree(source: Path, target: Path, leaving_out: tuple[str, ...] = ()) -> None:
    """Copy a directory tree, into target's folder if it has one, keeping symlinks as links and
    leaving out VCS and cache folders (and the files whose names match the patterns leaving_out).

    A file that cannot be copied stops the copy with its own OSError: shutil.copytree would go
    on and raise its Error, which keeps each file's error as text alone, so a full disk's
    ENOSPC could not be known as a passing fault of the host (pipeline.tasks.retry).
    """
    try:
        shutil.copytree(source, target, symlinks=True, copy_function=_copy_or_stop,
                        ignore=shutil.ignore_patterns(*IGNORED_NAMES, *leaving_out),
                        dirs_exist_ok=True)
    except _CopyFailed as failed:
        raise failed.error from None


def copy_tree_lacking(source: Path, target: Path, left_out: Collection[str]) -> None:
    """Copy a directory tree but the files and folders left out, by their paths in it."""
    copy_tree(source, target)
    for relative in left_out:
        path = target / relative
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.is_symlink() or path.exists():
            path.unlink()


def _copy_or_stop(source: str, target: str) -> str:
    """Copy one file of a tree as shutil.copytree does, stopping the whole copy if it fails."""
    try:
        return shutil.copy2(source, target)
    except OSError as exc:
        raise _CopyFailed(exc) from exc


def copy_path(source: Path, target: Path, leaving_out: tuple[str, ...] = ()) -> None:
    """Copy a file or a directory tree to target, but the files whose names match the patterns
    leaving_out."""
    if source.is_dir():
        copy_tree(source, target, leaving_out)
    elif not any(fnmatch.fnmatch(source.name, pattern) for pattern in leaving_out):
        _copy_file(source, target)


def _add_course_files(source: Path, base: Path, relative: str) -> None:
    """Copy a course file, or each file of a course folder, to its place in a solution base."""
    if not source.is_dir():
        shutil.copy2(source, _place_in(base, relative))
        return
    for path in sorted(source.rglob("*")):
        if path.is_file() and not _ignored(path, source):
            shutil.copy2(path, _place_in(base, (Path(relative) / path.relative_to(source))
                                         .as_posix()))


def _place_in(base: Path, relative: str) -> Path:
    """Return base/relative cleared for a course file: whatever a solution has there goes.

    A solution's link or file standing where a folder of the path must be, or at the path
    itself, is removed, so the course's file is written inside base and never through a link
    a student committed (to a host file, say).
    """
    folder = base
    *folders, name = Path(relative).parts
    for part in folders:
        folder = folder / part
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            folder.unlink()
        folder.mkdir(exist_ok=True)
    target = folder / name
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        shutil.rmtree(target)
    return target


def _copy_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(*IGNORED_NAMES))
    else:
        shutil.copy2(source, target)


def code_names(code: str) -> frozenset[str]:
    """Return the dotted names code mentions and each of their parts, and the texts its strings
    hold and each of their path steps: what it may import or open."""
    return _with_steps(CODE_NAME.findall(code), ".") \
        | _with_steps([text for _, text in QUOTED_TEXT.findall(code)], "/")


def imported_names(code: str) -> frozenset[str]:
    """Return what Python code surely loads test files by: the modules it imports and each of
    their parts, and the texts of its strings and each of their path steps (a word it uses
    besides, `data`, names no data.py); code that does not parse here (a newer Python's syntax,
    which the sandbox's interpreter may take), all code_names finds."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return code_names(code)
    modules: list[str] = []
    texts: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules += [alias.name for alias in node.names]
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.append(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            texts.append(node.value)
    return _with_steps(modules, ".") | _with_steps(texts, "/")


def _with_steps(names: list[str], separator: str) -> frozenset[str]:
    """Return names and each of their steps between separators."""
    return frozenset(names) | frozenset(step for name in names for step in name.split(separator))


def select_test_files(staged: StagedAssignment, work: Path, found: set[str]) -> Path | None:
    """Return a directory holding only the test files found (test_files_named), None for none."""
    if not found:
        return None
    chosen = sorted(found)
    digest = hashlib.sha256("\0".join(chosen).encode()).hexdigest()[:16]
    target = work / f"tests-{digest}"
    if not target.exists():
        partial = work / f"tests-{digest}.partial"
        partial.mkdir()
        for relative in chosen:
            copy_path(staged.tests_dir / relative, partial / relative)
        os.replace(partial, target)
    return target


def test_files_named(staged: StagedAssignment, names: frozenset[str],
                     names_in: Callable[[str], frozenset[str]] = code_names) -> set[str]:
    """Return the test files whose module or file name is in names, and those that the Python
    code of these names in turn (a helper's own imports), each file's as names_in reads it."""
    found: set[str] = set()
    pending = _named_test_files(staged, names)
    while pending:
        found |= pending
        named = frozenset().union(*(names_in(code) for relative in pending
                                    for code in _python_codes(staged.tests_dir / relative)))
        pending = _named_test_files(staged, named) - found
    return found


def _named_test_files(staged: StagedAssignment, names: frozenset[str]) -> set[str]:
    return {relative for relative in staged.test_files if _names_of(relative) & names}


def _names_of(name: str) -> set[str]:
    """Return the names code gives a test file by: its path, its file name, and a Python module's
    or a folder's name to import (a data file's stem, `expected` of expected.json, is a word any
    test's code may use)."""
    path = Path(name)
    return {name, path.name} | ({path.stem} if path.suffix in IMPORTED_SUFFIXES else set())


def _python_codes(path: Path) -> list[str]:
    """Return the texts of a test file's Python code: the file, or a folder's .py files (links
    are not followed)."""
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return [file.read_text(encoding="utf-8", errors="replace") for file in files
            if file.suffix == ".py" and file.is_file() and not file.is_symlink()]


def contained_file(base: Path, relative: str) -> Path | None:
    """Return base/relative if it is a file that resolves inside base (links may not leave it)."""
    resolved = contained_path(base, relative)
    return resolved if resolved is not None and resolved.is_file() else None


def contained_path(base: Path, relative: str) -> Path | None:
    """Return base/relative, of any kind, if it exists and resolves inside base."""
    try:
        resolved = (base / relative).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return resolved if resolved.is_relative_to(base.resolve()) else None


def tree_digest(*roots: Path) -> str:
    """Return a content hash of directory trees (paths and bytes), for cache keys."""
    digest = hashlib.sha256()
    for root in roots:
        digest.update(b"\0root\0" + str(root.name).encode())
        for path in sorted(p for p in root.rglob("*") if not _ignored(p, root)):
            relative = path.relative_to(root).as_posix().encode()
            if path.is_symlink():
                digest.update(b"L" + relative + b"\0" + os.readlink(path).encode())
            elif path.is_file():
                digest.update(b"F" + relative + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _ignored(path: Path, root: Path) -> bool:
    return any(part in IGNORED_NAMES for part in path.relative_to(root).parts)
