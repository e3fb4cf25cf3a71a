"""The standalone result page: content, escaping of hostile text, hidden tests, timings."""

from __future__ import annotations

import html
import html.parser

import pytest

from pipeline.reports import comment_marker, mr_comment_markdown, result_page_html
from pipeline.reports.markdown import md_text
from tests.reports.report_samples import (case, collection, crashed, mixed_report, report, run,
                                          value_details)

HOSTILE = "</pre></td><script>alert(1)</script><img src=x onerror=alert(2)>"
VOID = {"meta", "img", "br", "hr", "input", "link"}


class _Page(html.parser.HTMLParser):
    """Check nesting and collect tags, texts per tag and table rows."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.tags: list[str] = []
        self.errors: list[str] = []
        self.text: list[tuple[str, str]] = []
        self.rows: list[list[str]] = []
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.external += [value for name, value in attrs if name in ("src", "href")]
        if tag == "tr":
            self.rows.append([])
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.open[-1:]}")
            return
        self.open.pop()

    def handle_data(self, data):
        where = self.open[-1] if self.open else ""
        self.text.append((where, data))
        if where in ("td", "th") and self.rows:
            self.rows[-1].append(data)

    def texts_in(self, tag: str) -> list[str]:
        return [data for where, data in self.text if where == tag]


def parsed(page: str) -> _Page:
    result = _Page()
    result.feed(page)
    result.close()
    assert result.errors == [] and result.open == []
    return result


def test_page_shows_outcome_collections_failures_passed_and_timings():
    page = parsed(result_page_html(run(), mixed_report()))

    assert page.texts_in("title") == ["week1/assignment1 · course/alice · gradehook"]
    assert page.texts_in("h1") == ["week1/assignment1"]
    assert ("❌ Score 25% (1 of 4 collections passed, 2/6 tests passed, 1 of the 6 hidden)"
            in page.texts_in("p"))
    assert page.rows[:5] == [
        ["Result", "Collection", "Type", "Tests passed"],
        ["❌ failed", "Variables", "variable", "1/3"],
        ["⏭️ skipped", "Dependent", "variable", "0/1"],
        ["❌ failed", "Secret checks", "variable", "hidden"],
        ["✅ passed", "Files", "exist", "1/1"],
    ]
    assert page.texts_in("pre")[:6] == [
        "3", "2", "incorrect value", "type float", "type int", "incorrect type"]
    assert page.texts_in("li") == [" (Variables)", " (Files)"]
    assert page.rows[5:] == [
        ["Stage", "At (UTC)", "After the previous stage"],
        ["Received", "2026-03-01 10:00:00"], ["Queued", "2026-03-01 10:00:00", "0.5 s"],
        ["Started", "2026-03-01 10:00:02", "1.5 s"], ["Finished", "2026-03-01 10:00:09", "7.2 s"],
        ["Grading step", "Seconds"], ["clone", "0.25"], ["tests", "3.50"],
    ]
    assert page.external == []


def test_the_engine_steps_are_named_for_students():
    given = mixed_report()
    given["gradehook"]["timings"] = {"load": 0.01, "studentSandbox": 0.5,
                                     "referenceSandbox": 0.25, "total": 1.0, "newStep": 0.1}

    page = parsed(result_page_html(run(), given))

    steps = page.rows[page.rows.index(["Grading step", "Seconds"]) + 1:]
    assert steps == [["Reading the tests", "0.01"], ["Your program's runs, added up", "0.50"],
                     ["The reference solution's runs, added up", "0.25"], ["In all", "1.00"],
                     ["newStep", "0.10"]]


def test_the_programs_runs_that_ran_at_once_read_as_added_up_not_as_how_long_it_ran():
    """Before, three collections whose runs each ran out of a 5 s time limit, two at once, read
    'Your program ran for 17.49' seconds beside 'Running the tests 8.91' and 'In all 8.91'."""
    given = mixed_report()
    given["gradehook"]["timings"] = {"grading": 8.91, "studentSandbox": 17.49,
                                     "referenceSandbox": 0.0, "total": 8.91}

    page = parsed(result_page_html(run(), given))

    steps = page.rows[page.rows.index(["Grading step", "Seconds"]) + 1:]
    assert steps == [["Running the tests", "8.91"], ["Your program's runs, added up", "17.49"],
                     ["The reference solution's runs, added up", "0.00"], ["In all", "8.91"]]


def test_the_message_column_shows_only_when_a_collection_has_a_message():
    given = mixed_report()
    given["tests"][1]["resultMessage"] = "Pass the variables first"
    given["tests"][2]["resultMessage"] = "secret message"

    page = parsed(result_page_html(run(), given))

    assert page.rows[:4] == [
        ["Result", "Collection", "Type", "Tests passed", "Message"],
        ["❌ failed", "Variables", "variable", "1/3"],
        ["⏭️ skipped", "Dependent", "variable", "0/1", "Pass the variables first"],
        ["❌ failed", "Secret checks", "variable", "hidden"],
    ]
    assert "secret message" not in result_page_html(run(), given)


def test_tables_scroll_on_their_own_and_long_names_wrap_on_a_phone():
    page = result_page_html(run(), mixed_report())
    css = page[page.index("<style>"):page.index("</style>")]

    assert page.count("<table>") == page.count("<div class=\"scroll\"><table>") == 3
    assert "<td class=\"name\">Variables</td>" in page
    assert "h1,h3,.meta,.headline,dd,li,td.name{overflow-wrap:anywhere}" in css
    assert ".scroll{overflow-x:auto;" in css


def test_one_test_per_collection_keeps_the_short_outcome():
    given = report([collection("A", [case("a")]), collection("B", [case("b", "FAILED", "E   x")])])

    assert "❌ 1/2 tests passed, score 50%" in parsed(result_page_html(run(), given)).texts_in("p")


def test_a_crash_shows_the_line_that_raised_escaped():
    entry = "/week1/hello/hello.py"
    given = report([crashed("Greeting", ["greeting", "hostile"], entry=entry,
                            frame={"filename": entry, "lineno": 5,
                                   "line": f"print(greetin)  # {HOSTILE}"})])

    page = parsed(result_page_html(run(), given))

    assert "script" not in page.tags and "img" not in page.tags
    assert page.texts_in("dt") == ["Message", "Crashed at"]
    assert page.texts_in("pre")[1] == f"line 5: print(greetin)  # {HOSTILE}"


def test_a_run_that_failed_every_test_of_a_collection_is_one_card():
    entry = "/week1/hello/hello.py"
    given = report([
        crashed("Greeting", [f"g{n}" for n in range(20)], entry=entry,
                frame={"filename": entry, "lineno": 5, "line": "print(greetin)"}),
        collection("Values", [case(f"v{n}", "FAILED", value_details(f"v{n}", "1", "2"))
                              for n in range(2)])])

    page = parsed(result_page_html(run(), given))

    assert page.texts_in("h3") == ["❌ Greeting › all 20 tests", "❌ Values › ", "❌ Values › "]
    assert page.texts_in("code") == ["course/alice", "main", "01234567", "run-1", "v0", "v1"]
    assert page.texts_in("pre")[:2] == [
        "Failed: Execution of /week1/hello/hello.py failed, ERROR: name 'greetin' is not defined",
        "line 5: print(greetin)"]
    assert page.texts_in("dt") == ["Message", "Crashed at"] + ["Expected", "Actual", "Message"] * 2


def test_hidden_collections_reveal_no_tests_or_values():
    page = result_page_html(run(), mixed_report())

    assert "secret" not in page.replace("Secret checks", "")
    assert "42" not in page


def test_hostile_text_is_escaped_everywhere():
    hostile = report([collection(HOSTILE, [
        case(HOSTILE, "FAILED", value_details("n", HOSTILE, HOSTILE)),
        case("crash", "FAILED", f"E   Failed: {HOSTILE}\n{HOSTILE}"),
    ])])

    page = parsed(result_page_html(run(assignment=HOSTILE, ref=HOSTILE,
                                       status_reason=HOSTILE), hostile))

    assert "script" not in page.tags and "img" not in page.tags
    assert page.texts_in("h1") == [HOSTILE]
    assert page.texts_in("pre").count(HOSTILE) == 2  # the expected and actual values
    assert f"Failed: {HOSTILE}" in page.texts_in("pre")


def test_value_excerpts_are_labelled_and_escaped():
    given = report([collection("Output", [
        case("s", "FAILED", "E   AssertionError: Variable `s` has incorrect type, expected: "
                            "<class 'str'>, obtained <class 'list'>",
             debug={"expected": HOSTILE, "actual": "['a']"}),
        case("out", "FAILED", "E   AssertionError: Variable `out` does not contain the "
                              "specified pattern `x`", debug={"actual": HOSTILE}),
    ])])

    page = parsed(result_page_html(run(), given))

    assert "script" not in page.tags and "img" not in page.tags
    assert page.texts_in("dt") == ["Expected", "Actual", "Message", "Actual", "Message"]
    assert page.texts_in("pre")[:2] == [f"type str: {HOSTILE}", "type list: ['a']"]
    assert page.texts_in("pre")[3] == HOSTILE


def test_values_with_line_breaks_still_read_as_an_incorrect_value():
    given = report([collection("Counting", [
        case("out", "FAILED", value_details("out", "2\n4\n", "1\n2\n"))], kind="stdout")])

    page = parsed(result_page_html(run(), given))

    assert page.texts_in("dt") == ["Expected", "Actual", "Message"]
    assert page.texts_in("pre") == ["1\n2\n", "2\n4\n", "incorrect value"]


def test_error_page_explains_and_shows_no_tables():
    page = parsed(result_page_html(run("error", status_reason="git fetch timed out",
                                       timings={}), None))

    assert [text for text in page.texts_in("p") if text.strip()] == [
        "⚠️ Not graded: gradehook ran into a problem: git fetch timed out",
        "This is a problem on gradehook's side, not in your code, and no score was recorded. "
        "Push again later; if it keeps happening, tell your course staff."]
    assert "table" not in page.tags


def test_long_details_are_cut():
    long = report([collection("A", [case("t", "FAILED", "E   boom\n" + "x" * 50_000)])])

    page = parsed(result_page_html(run(), long))

    details = max(page.texts_in("pre"), key=len)
    assert len(details) == 20_000 and details.endswith("…")


def test_values_that_differ_by_characters_that_do_not_show_do_not_look_alike():
    given = report([collection("Greeting", [
        case("out", "FAILED", value_details("out", "\x1b[32mHello\x1b[0m\r", "Hello"))],
        kind="stdout")])

    page = parsed(result_page_html(run(), given))

    assert page.texts_in("pre") == ["Hello", "⟨U+001B⟩[32mHello⟨U+001B⟩[0m⟨U+000D⟩",
                                    "incorrect value"]


@pytest.mark.parametrize("details, why", [
    ("E   Failed: Execution of /s/ex.py failed, ERROR: memory limit of 64 MB exceeded",
     "Programs may use at most 64 MB of memory while they are graded: yours needed more and was "
     "stopped, at a line gradehook cannot name. Look for an endless loop that adds to a list or "
     "string."),
    ("E   Failed: Execution of pytest failed, ERROR: memory limit of 1024 MB exceeded",
     "Programs may use at most 1024 MB of memory while they are graded: yours needed more and "
     "was stopped, at a line gradehook cannot name. Look for an endless loop that adds to a list "
     "or string."),
    ("E   Failed: Execution of /s/ex.py failed, ERROR: the program printed more than 16 MB and "
     "was stopped, likely in an endless loop",
     "Your program printed more than 16 MB, far more than any test needs, and was stopped, at a "
     "line gradehook cannot name. Look for a print() in a loop that never ends."),
    ("E   Failed: the program logged more than 8 MB and was stopped, likely in an endless loop",
     "Your program logged more than 8 MB, far more than any test needs, and was stopped, at a "
     "line gradehook cannot name. Look for a logging call in a loop that never ends."),
], ids=["memory", "memory-pytest", "printed", "logged-pytest"])
def test_a_run_stopped_at_its_memory_limit_or_output_stop_says_what_to_look_for(details, why):
    """Before, such a failure read only 'memory limit of 64 MB exceeded' or 'the program printed
    more than 16 MB and was stopped, likely in an endless loop', naming no line (the sandbox
    stops the program from outside, wherever it is) and not saying what to look for."""
    given = report([collection("C", [case("x", "FAILED", details)])])

    page = result_page_html(run("failed"), given)
    comment = mr_comment_markdown([(run("failed"), given)], comment_marker("mr-1"))

    assert f"<dt>Why</dt><dd><pre>{html.escape(why)}</pre></dd>" in page
    assert md_text(why, 200) in comment
