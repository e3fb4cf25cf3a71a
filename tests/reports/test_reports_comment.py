"""The merge request comment: exact rows, safe escaping of hostile text, hidden tests, size."""

from __future__ import annotations

import html.parser

import pytest
from markdown_it import MarkdownIt

from pipeline.reports import ReportInputError, comment_marker, mr_comment_markdown
from pipeline.reports.comment import COMMENT_MAX_CHARS
from tests.reports.report_samples import (RESULT_URL, case, collection, crashed, mixed_report,
                                          report, run, value_details)

MARKER = comment_marker("mr-7")
HOSTILE = ("</details><script>alert(1)</script> | `` ``` @all <img src=x onerror=alert(2)> "
           "[x](javascript:y)")
ENTRY = "/week1/hello/hello.py"


class _Html(html.parser.HTMLParser):
    """Collect element names, cells per table row, and the text outside code."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.row_cells: list[int] = []
        self.code_depth = 0
        self.outside_code: list[str] = []
        self.in_code: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "tr":
            self.row_cells.append(0)
        elif tag in ("td", "th"):
            self.row_cells[-1] += 1
        elif tag in ("code", "pre"):
            self.code_depth += 1

    def handle_endtag(self, tag):
        if tag in ("code", "pre"):
            self.code_depth -= 1

    def handle_data(self, data):
        (self.in_code if self.code_depth else self.outside_code).append(data)


def rendered(markdown: str) -> _Html:
    """Render as a CommonMark + tables renderer with raw HTML allowed, then parse."""
    parsed = _Html()
    parsed.feed(MarkdownIt("commonmark").enable("table").render(markdown))
    return parsed


def test_marker_is_the_first_line():
    assert mr_comment_markdown([(run(), mixed_report())], MARKER).split("\n")[0] == \
        "<!-- gradehook:mr-7 -->"


def test_marker_keys_cannot_close_the_comment_early():
    assert comment_marker("a --> <b>") == "<!-- gradehook:a_-___b_ -->"
    assert comment_marker("course/alice!12") == "<!-- gradehook:course/alice_12 -->"
    with pytest.raises(ReportInputError):
        mr_comment_markdown([(run(), None)], "<!-- other -->")


def test_sections_show_outcome_collections_failures_and_passed_tests():
    text = mr_comment_markdown([(run(), mixed_report())], MARKER)
    lines = text.split("\n")

    assert "#### ❌ week1\\/assignment1" in lines
    assert ("**Score 25\\% \\(1 of 4 collections passed\\, 2\\/6 tests passed\\, 1 of the 6 "
            "hidden\\)**") in lines
    assert f"Commit ` 01234567 ` on ` main ` · [Full report]({RESULT_URL})" in lines
    assert [line for line in lines if line.startswith("| ") and "---" not in line][:5] == [
        "|  | Collection | Type | Tests passed |",
        "| ❌ | Variables | variable | 1/3 |",
        "| ⏭️ | Dependent | variable | 0/1 |",
        "| ❌ | Secret checks | variable | hidden |",
        "| ✅ | Files | exist | 1/1 |",
    ]
    failures = lines[lines.index("|  | Test | Expected | Actual | Message |") + 2:][:3]
    assert failures == [
        "| ❌ | ` x ` (Variables) | ` 3 ` | ` 2 ` | ` incorrect value ` |",
        "| ❌ | ` y ` (Variables) | ` type float ` | ` type int ` | ` incorrect type ` |",
        "| ⏭️ | ` w ` (Dependent) |  |  "
        "| `` Skipped: Success-Dependency `['Variables']` not satisfied `` |",
    ]
    passed = lines[lines.index("<details><summary>Passed tests (2)</summary>") + 2:][:2]
    assert passed == ["- ` z ` (Variables)", "- ` main.py ` (Files)"]


def test_hidden_collections_show_only_pass_or_fail():
    text = mr_comment_markdown([(run(), mixed_report())], MARKER)

    assert "| ❌ | Secret checks | variable | hidden |" in text
    assert "_Tests marked hidden show only whether they passed\\._" in text
    assert "secret" not in text.replace("Secret checks", "")
    assert "42" not in text


def test_hostile_student_text_stays_inside_code():
    hostile = report([collection("Output", [
        case("name", "FAILED", value_details("n", HOSTILE, "ok")),
        case("crash", "FAILED", f"E   Failed: {HOSTILE}\n````\n{HOSTILE}\n</details>\n{HOSTILE}"),
    ])])

    text = mr_comment_markdown([(run(), hostile)], MARKER)
    page = rendered(text)

    assert "script" not in page.tags and "img" not in page.tags
    assert page.tags.count("a") == 1  # only the link to the full report
    outside = "".join(page.outside_code)
    assert "@all" not in outside and "alert" not in outside
    assert HOSTILE in "".join(page.in_code)
    assert page.row_cells == [4, 4, 5, 5, 5]  # header and row of collections, then failures
    assert page.tags.count("details") == 1  # the crash's further lines; nothing passed


def test_value_excerpts_replace_the_abbreviated_values_and_stay_inside_code():
    hostile = report([collection("Output", [
        case("n", "FAILED", value_details("n", "[1.0, 2.0,...", "[1.0, 2.0,..."),
             debug={"expected": "[1.0, 2.0, 3.0]", "actual": "[1.0, 2.0, 3.5]"}),
        case("s", "FAILED", "E   AssertionError: Variable `s` has incorrect len, expected: 2, "
                            "obtained 97", debug={"expected": "'ok'", "actual": HOSTILE}),
        case("out", "FAILED", "E   AssertionError: Variable `out` does not contain the "
                              "specified pattern `x`", debug={"actual": HOSTILE}),
    ])])

    text = mr_comment_markdown([(run(), hostile)], MARKER)
    page = rendered(text)

    assert "| ❌ | ` n ` (Output) | ` [1.0, 2.0, 3.0] ` | ` [1.0, 2.0, 3.5] ` " \
        "| ` incorrect value ` |" in text.split("\n")
    assert "script" not in page.tags and "img" not in page.tags
    assert page.row_cells == [4, 4, 5, 5, 5, 5]
    assert f"length 97: {HOSTILE}" in page.in_code and HOSTILE in page.in_code
    assert "length 2: 'ok'" in page.in_code
    assert "@all" not in "".join(page.outside_code)


def test_values_with_line_breaks_still_read_as_an_incorrect_value():
    """The engine quotes short values whole, so printed lines put line breaks in its message."""
    given = report([collection("Counting", [
        case("out", "FAILED", value_details("out", "2\n4\n", "1\n2\n"),
             debug={"expected": "'1\\n2\\n'", "actual": "'2\\n4\\n'"})], kind="stdout")])

    text = mr_comment_markdown([(run(), given)], MARKER)

    assert "| ❌ | ` out ` (Counting) | ` '1\\n2\\n' ` | ` '2\\n4\\n' ` " \
        "| ` incorrect value ` |" in text.split("\n")
    assert "<details><summary>Details" not in text


def test_values_keep_their_runs_of_spaces_and_show_their_line_breaks():
    """Outputs that differ only in spacing or layout must not look the same in GitLab."""
    given = report([collection("Table", [
        case("out", "FAILED", value_details("out", "Name Age\nA", "Name  Age\n"),
             debug={"expected": "'Name  Age\\nAda   36\\n'", "actual": "'Name Age\\nAda 36\\n'"}),
        case("df", "FAILED", value_details("df", "   city  t...", "   city  t..."),
             debug={"expected": "   city  temp\n0  Graz  14.5",
                    "actual": "   city  temp\n0  Graz  14.0"}),
    ])])

    text = mr_comment_markdown([(run(), given)], MARKER)
    shown = [code.replace("\u00a0", " ") for code in rendered(text).in_code]

    assert "| ❌ | ` out ` (Table) | ` 'Name \u00a0Age\\nAda \u00a0 36\\n' ` " \
        "| ` 'Name Age\\nAda 36\\n' ` | ` incorrect value ` |" in text.split("\n")
    assert "'Name  Age\\nAda   36\\n'" in shown and "'Name Age\\nAda 36\\n'" in shown
    assert "   city  temp\\n0  Graz  14.5" in shown and "   city  temp\\n0  Graz  14.0" in shown
    assert "` \u00a0\u00a0 city \u00a0temp\\n0 \u00a0Graz \u00a014.5 `" in text


def test_a_crash_shows_the_line_of_the_students_file_that_raised():
    given = report([
        crashed("Greeting", ["greeting"], entry=ENTRY,
                frame={"filename": ENTRY, "lineno": 5, "line": "print(greetin)"}),
        crashed("Helper", ["n"], entry=ENTRY, error="invalid literal",
                frame={"filename": "/week1/hello/lib/helper.py", "lineno": 2,
                       "line": 'return int("x")'})])

    lines = mr_comment_markdown([(run(), given)], MARKER).split("\n")

    assert ("| ❌ | ` greeting ` (Greeting) |  |  | ` Failed: Execution of /week1/hello/hello.py "
            "failed, ERROR: name 'greetin' is not defined ` at line 5: ` print(greetin) ` |") \
        in lines
    assert ("| ❌ | ` n ` (Helper) |  |  | ` Failed: Execution of /week1/hello/hello.py failed, "
            "ERROR: invalid literal ` at lib\\/helper\\.py\\, line 2: ` return int(\"x\") ` |") \
        in lines


def test_a_run_that_failed_every_test_of_a_collection_is_one_row():
    crash = crashed("Greeting", [f"g{n}" for n in range(20)], entry=ENTRY,
                    frame={"filename": ENTRY, "lineno": 5, "line": "print(greetin)"})
    slow = "E   Failed: Maximum execution time of 3.0 seconds exceeded"
    timeout = collection("Slow", [case(f"s{n}", "FAILED", slow) for n in range(4)])
    timeout["status"] = "TIMEDOUT"
    later = "Skipped: Success-Dependency `['Greeting']` not satisfied"
    skipped = collection("Later", [case(f"l{n}", "SKIPPED", later) for n in range(3)])
    skipped["status"] = "SKIPPED"
    values = collection("Values", [case(f"v{n}", "FAILED", value_details(f"v{n}", "1", "2"))
                                   for n in range(3)])

    lines = mr_comment_markdown([(run(), report([crash, timeout, skipped, values]))],
                                MARKER).split("\n")

    failures = lines[lines.index("|  | Test | Expected | Actual | Message |") + 2:][:6]
    assert failures == [
        "| ❌ | all 20 tests (Greeting) |  |  | ` Failed: Execution of /week1/hello/hello.py "
        "failed, ERROR: name 'greetin' is not defined ` at line 5: ` print(greetin) ` |",
        "| ❌ | all 4 tests (Slow) |  |  | ` Failed: Maximum execution time of 3.0 seconds "
        "exceeded ` |",
        "| ⏭️ | all 3 tests (Later) |  |  "
        "| `` Skipped: Success-Dependency `['Greeting']` not satisfied `` |",
        "| ❌ | ` v0 ` (Values) | ` 2 ` | ` 1 ` | ` incorrect value ` |",
        "| ❌ | ` v1 ` (Values) | ` 2 ` | ` 1 ` | ` incorrect value ` |",
        "| ❌ | ` v2 ` (Values) | ` 2 ` | ` 1 ` | ` incorrect value ` |",
    ]
    assert "| ❌ | Greeting | variable | 0/20 |" in lines


def test_a_cut_list_counts_the_tests_behind_the_rows_left_out():
    given = report([crashed(f"Part {n}", ["a", "b"], entry=ENTRY, error="x" * 150,
                            frame={"filename": ENTRY, "lineno": 1, "line": "y" * 100})
                    for n in range(1000)])

    text = mr_comment_markdown([(run(), given)], MARKER)

    assert len(text) <= COMMENT_MAX_CHARS
    shown = sum(1 for line in text.split("\n") if line.startswith("| ❌ | all 2 tests (Part "))
    assert 0 < shown < 1000
    assert (f"…and {2 * (1000 - shown)} more tests that did not pass\\: see the full "
            "report\\.") in text


def test_tests_that_failed_alike_on_their_own_keep_their_rows():
    """The same message on every test is one failure only when the collection's run failed."""
    alike = collection("Checks", [case(f"c{n}", "FAILED", "E   AssertionError: assert None == 3")
                                  for n in range(3)])
    partly = crashed("Partly", ["p0", "p1"], entry=ENTRY, frame={"filename": ENTRY, "lineno": 1,
                                                                 "line": "x"})
    partly["tests"].append(case("p2"))

    lines = mr_comment_markdown([(run(), report([alike, partly]))], MARKER).split("\n")

    rows = [line.split(" | ")[1] for line in lines if line.startswith("| ❌ | ` ")]
    assert rows == ["` c0 ` (Checks)", "` c1 ` (Checks)", "` c2 ` (Checks)", "` p0 ` (Partly)",
                    "` p1 ` (Partly)"]


def test_a_crash_outside_the_students_files_shows_no_line():
    """A SyntaxError is raised where gradehook compiles the file; its message has the line."""
    given = report([crashed(
        "Greeting", ["greeting"], entry=ENTRY, error="'(' was never closed (hello.py, line 2)",
        frame={"filename": "/opt/gradehook/lib/pipeline/grading/runner.py", "lineno": 253,
               "line": 'exec(compile(source, path, "exec"), namespace)'})])

    text = mr_comment_markdown([(run(), given)], MARKER)

    assert "(hello.py, line 2) ` |" in text
    assert "253" not in text and "compile" not in text


def test_a_crashing_line_stays_inside_code():
    given = report([crashed("Greeting", ["greeting"], entry=ENTRY,
                            frame={"filename": ENTRY, "lineno": 5, "line": HOSTILE})])

    page = rendered(mr_comment_markdown([(run(), given)], MARKER))

    assert "script" not in page.tags and "img" not in page.tags
    assert page.row_cells == [5, 5]  # one test: the failures table alone names the collection
    assert HOSTILE in page.in_code
    assert "@all" not in "".join(page.outside_code)


def test_course_chosen_names_in_detail_summaries_stay_inside_code():
    """GitLab would link `#1` and `!2` and mention `@tutor` in a summary's plain text."""
    given = report([collection("Task #1 (see !2, ask @tutor)", [
        case("out <b>", "FAILED", "E   Failed: boom\nTraceback, line 2")])])

    text = mr_comment_markdown([(run(), given)], MARKER)
    page = rendered(text)

    assert "<details><summary>Details: <code>Task #1 (see !2, ask @tutor)</code> › " \
        "<code>out &lt;b&gt;</code></summary>" in text.split("\n")
    summary = page.outside_code.index("Details: ")
    assert page.outside_code[summary:summary + 2] == ["Details: ", " › "]
    assert "Task #1 (see !2, ask @tutor)" in page.in_code and "out <b>" in page.in_code


def test_table_cells_with_pipes_and_backticks_keep_their_columns():
    text = mr_comment_markdown([(run(), report([collection("A|B", [
        case("t|`u`", "FAILED", value_details("t", "1|2", "`3`")), case("v")])]))], MARKER)

    page = rendered(text)

    assert page.row_cells == [4, 4, 5, 5]
    assert "t|`u`" in page.in_code and "1|2" in page.in_code and "`3`" in page.in_code


def test_only_http_links_are_made():
    text = mr_comment_markdown([(run(result_url="javascript:alert(1)"), mixed_report())],
                               MARKER)

    assert "javascript" not in text
    assert "Commit ` 01234567 ` on ` main `\n" in text


@pytest.mark.parametrize("status, reason, course_error, expected", [
    ("error", "git clone failed", None,
     "**Not graded\\: gradehook ran into a problem\\: git clone failed**"),
    ("failed", None, "test.yaml: unknown key 'tset'",
     "**Not graded\\: the course\\'s tests for this assignment have a problem\\: test\\.yaml\\: "
     "unknown key \\'tset\\'**"),
    ("superseded", None, None,
     "**Not graded\\: a newer push to this branch replaced this commit**"),
    ("running", None, None, "**Grading in progress**"),
])
def test_runs_without_a_score_explain_why_and_show_no_tables(status, reason, course_error,
                                                             expected):
    given = report([collection("A", [case("a", "FAILED", "E   x")])],
                   course_error=course_error)

    text = mr_comment_markdown([(run(status, status_reason=reason), given)], MARKER)

    assert expected in text.split("\n")
    assert "\\%" not in text and "| Collection |" not in text


def test_several_assignments_get_an_overview_in_name_order():
    later = run(assignment="week2/b", run_id="run-2")
    earlier = run("passed", assignment="week1/a")
    passed = report([collection("A", [case("a")])])

    lines = mr_comment_markdown([(later, mixed_report()), (earlier, passed)], MARKER).split("\n")

    assert lines[3:7] == ["|  | Assignment | Result |", "| --- | --- | --- |",
                          "| ✅ | week1\\/a | 1\\/1 test passed\\, score 100\\% |",
                          "| ❌ | week2\\/b | Score 25\\% \\(1 of 4 collections passed\\, "
                          "2\\/6 tests passed\\, 1 of the 6 hidden\\) |"]
    assert lines.index("#### ✅ week1\\/a") < lines.index("#### ❌ week2\\/b")


def test_two_hundred_tests_stay_readable_and_bounded():
    tests = [case(f"value_{n}", "FAILED" if n % 2 else "PASSED",
                  value_details(f"value_{n}", "x" * 500, "y" * 500) + "\n" + "diff\n" * 100
                  if n % 2 else None) for n in range(200)]
    big = report([collection(f"Part {n}", tests[n * 20:(n + 1) * 20]) for n in range(10)])

    text = mr_comment_markdown([(run(), big)], MARKER)

    assert len(text) < COMMENT_MAX_CHARS
    lines = text.split("\n")
    failure_rows = [line for line in lines if line.startswith("| ❌ | ` value_")]
    assert len(failure_rows) == 100
    assert all(len(line) < 600 for line in lines)
    assert text.count("<details><summary>Details:") == 5
    assert "More details for the other tests are in the full report\\." in lines
    assert "<details><summary>Passed tests (100)</summary>" in lines


def _assignments(big: dict, small: dict, count: int) -> list:
    """Return runs of a branch's graded assignments: the first with the big report."""
    return [(run(assignment="week01/big", run_id="run-big"), big)] + [
        (run(assignment=f"week{n + 2:02d}/small", run_id=f"run-{n}"), small)
        for n in range(count - 1)]


def _sections(text: str) -> dict[str, list[str]]:
    """Return each assignment section's lines by its heading."""
    sections: dict[str, list[str]] = {}
    for line in text.split("\n"):
        if line.startswith("#### "):
            sections[line] = []
        elif sections:
            sections[next(reversed(sections))].append(line)
    return sections


def _empty_tables(lines: list[str]) -> list[int]:
    """Return where a table header is followed by no row."""
    return [n for n, line in enumerate(lines) if line.startswith("| ---")
            and not lines[n + 1].startswith("| ")]


def test_a_large_assignment_among_several_lists_all_its_tests():
    """200 collections of one test: the tests' lists name them, the room left is shared."""
    big = report([collection(f"Exercise {n + 1}: compute the running total of the list",
                             [case(f"v{n}", "FAILED" if n % 3 else "PASSED",
                                   value_details(f"v{n}", "1", "2"))]) for n in range(200)])
    small = report([collection("Values", [case("x", "FAILED", value_details("x", "1", "2")),
                                          case("y")])])

    text = mr_comment_markdown(_assignments(big, small, 8), MARKER)

    assert len(text) <= COMMENT_MAX_CHARS
    lines = _sections(text)["#### ❌ week01\\/big"]
    assert "|  | Collection | Type | Tests passed |" not in lines
    assert sum(1 for line in lines if line.startswith("| ❌ | ` v")) == 133
    assert "<details><summary>Passed tests (67)</summary>" in lines
    assert sum(1 for line in lines if line.startswith("- ` v")) == 67
    assert not any("…" in line for line in lines)
    assert text.count("| ❌ | Values | variable | 1/2 |") == 7
    assert _empty_tables(text.split("\n")) == []


def test_one_test_per_collection_keeps_only_hidden_collections_in_the_table():
    given = report([collection("A", [case("a")]), collection("B", [case("b", "FAILED", "E   x")]),
                    collection("Secret", [case("s", "FAILED", "E   y")])], hidden=["Secret"])

    lines = mr_comment_markdown([(run(), given)], MARKER).split("\n")

    assert [line for line in lines if line.startswith("| ") and "---" not in line] == [
        "|  | Collection | Type | Tests passed |", "| ❌ | Secret | variable | hidden |",
        "|  | Test | Expected | Actual | Message |", "| ❌ | ` b ` (B) |  |  | ` x ` |"]
    assert "- ` a ` (A)" in lines


def test_room_a_section_leaves_goes_to_the_others():
    big = report([collection("All", [case(f"t{n}", "FAILED", value_details("v", "a" * 300,
                                                                           "b" * 300))
                                     for n in range(3000)])])
    small = report([collection("Values", [case("x", "FAILED", value_details("x", "1", "2")),
                                          case("y")])])

    text = mr_comment_markdown(_assignments(big, small, 8), MARKER)

    assert COMMENT_MAX_CHARS * 0.95 < len(text) <= COMMENT_MAX_CHARS
    shown = sum(1 for line in text.split("\n") if line.startswith("| ❌ | ` t"))
    assert shown * 650 > COMMENT_MAX_CHARS * 0.8
    assert f"…and {3000 - shown} more tests that did not pass\\: see the full report\\." in text
    assert text.count("| ❌ | ` x ` (Values) | ` 2 ` | ` 1 ` | ` incorrect value ` |") == 7
    assert text.count("- ` y ` (Values)") == 7


@pytest.mark.parametrize("count", [12, 100])
def test_many_large_assignments_stay_bounded_and_print_no_empty_tables(count):
    tests = [case(f"value_{n}", "FAILED" if n % 2 else "PASSED",
                  value_details(f"value_{n}", "x" * 500, "y" * 500) + "\n" + "diff\n" * 100
                  if n % 2 else None) for n in range(200)]
    big = report([collection(f"Part {n}", tests[n * 20:(n + 1) * 20]) for n in range(10)])

    text = mr_comment_markdown(_assignments(big, big, count), MARKER)

    assert len(text) <= COMMENT_MAX_CHARS
    assert _empty_tables(text.split("\n")) == []
    sections = _sections(text)
    assert len(sections) == count
    for lines in sections.values():
        assert "| ❌ | Part 0 | variable | 10/20 |" in lines
        assert "**Tests that did not pass**" in lines
        assert "<details><summary>Passed tests (100)</summary>" in lines
        listed = [line for line in lines if line.startswith("| ❌ | ` value_")]
        assert bool(listed) == (count == 12)
        assert (lines.count("This comment has no room to list them\\: see the full report\\.")
                == (1 if listed else 2))


def test_a_huge_report_is_cut_with_a_pointer_to_the_full_report():
    tests = [case(f"t{n}" + "n" * 100, "FAILED", value_details("v", "a" * 300, "b" * 300))
             for n in range(3000)]

    text = mr_comment_markdown([(run(), report([collection("All", tests)]))], MARKER)

    assert len(text) <= COMMENT_MAX_CHARS
    shown = sum(1 for line in text.split("\n") if line.startswith("| ❌ | ` t"))
    assert 0 < shown < 3000
    assert f"…and {3000 - shown} more tests that did not pass\\: see the full report\\." in text


def test_one_more_failure_than_fits_is_one_test():
    tests = [case(f"t{n}" + "n" * 100, "FAILED", value_details("v", "a" * 300, "b" * 300))
             for n in range(600)]

    text = mr_comment_markdown([(run(), report([collection("All", tests)]))], MARKER)
    shown = sum(1 for line in text.split("\n") if line.startswith("| ❌ | ` t"))
    one_more = tests[:shown + 1]
    text = mr_comment_markdown([(run(), report([collection("All", one_more)]))], MARKER)

    assert "…and 1 more test that did not pass\\: see the full report\\." in text.split("\n")


def test_no_runs_is_an_error():
    with pytest.raises(ReportInputError):
        mr_comment_markdown([], MARKER)


def test_values_that_differ_by_characters_that_do_not_show_do_not_look_alike():
    """Escapes, carriage returns and zero-width spaces in a value are named, not dropped."""
    given = report([collection("Greeting", [
        case("out", "FAILED", value_details("out", "\x1b[32mHello\x1b[0m\r", "Hel\u200blo"))],
        kind="stdout")])

    text = mr_comment_markdown([(run(), given)], MARKER)

    assert "| ❌ | ` out ` (Greeting) | ` Hel⟨U+200B⟩lo ` " \
        "| ` ⟨U+001B⟩[32mHello⟨U+001B⟩[0m⟨U+000D⟩ ` | ` incorrect value ` |" in text.split("\n")
