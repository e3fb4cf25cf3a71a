"""Two student_projects entries: the project both claim is found exactly, checked by brute force."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import CourseSettings
from pipeline.project_paths import is_project_path
from pipeline.project_patterns import common_project

# Brute force: every project path of at most LONGEST of these pieces.
PIECES = ("a", "b", "-", ".", "/", ".git")
LONGEST = 5
PATHS = [path for n in range(LONGEST + 1) for parts in itertools.product(PIECES, repeat=n)
         if is_project_path(path := "".join(parts))]
PATTERN_PIECES = st.sampled_from(["a", "b", "-", ".", "/", ".git", "*", "?", "[ab]", "[!a]",
                                  "[a-b]", "[!.-/]", "[", "]", "!", "[]", "[!]", "[]a]", "g"])
entries = st.builds(lambda pieces, group: "".join(pieces) + ("/" if group else ""),
                    st.lists(PATTERN_PIECES, max_size=6), st.booleans())


def claimer(entry: str):
    return CourseSettings(name="c", student_projects=(entry,), reference_project="r").claims


@settings(max_examples=300, deadline=None)
@given(entries, entries)
def test_a_common_project_is_claimed_by_both_and_none_is_missed(first, second):
    example = common_project(first, second)
    claims_first, claims_second = claimer(first), claimer(second)
    both = [path for path in PATHS if claims_first(path) and claims_second(path)]
    if example is None:
        assert both == []
    else:
        assert is_project_path(example) and claims_first(example) and claims_second(example)
        assert all(len(example) <= len(path) for path in both)  # a shortest one
    assert (common_project(second, first) is None) == (example is None)


@pytest.mark.parametrize("first, second, example", [
    ("prog/students/", "prog/students/algo-*", "prog/students/algo-"),
    ("x/*-a", "x/b-*", "x/b-a"),
    ("prog1/", "prog1/", "prog1/a"),
    ("prog1/students/", "prog1/studentsx/", None),
    ("prog1/*", "prog1/*.atom", None),
    ("prog1/*", "*[.]ato[m]/*", None),
    ("prog1/*", "*.atomic", "prog1/a.atomic"),
    ("p/[]]", "p/?", None),  # ']' is no path character
    ("p/[!]]", "p/[!a-z]", "p/A"),
    ("p/[!]", "p/*", None),  # an unclosed '[' stands for itself
    ("p/[z-a]*", "p/*", None),  # an empty range takes nothing
    ("p/[!z-a]", "p/?", "p/a"),
    ("p/a" + "?" * 252, "p/*", "p/a" + "a" * 252),
    ("p/a" + "?" * 253, "p/*", None),  # longer than a GitLab path
    ("p/alice", "p/alice", "p/alice"),  # an entry naming one project claims only it
    ("p/alice", "p/bob", None),
    ("p/a*", "p/alice", "p/alice"),
    ("p/", "p/alice.git", None),  # a path GitLab reserves is no project
    ("p/alice", "q/", None),
])
def test_edges_of_fnmatch_and_of_project_paths(first, second, example):
    assert common_project(first, second) == example
