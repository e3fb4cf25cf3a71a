"""Course errors, meta.yaml (limits, hidden tests, staging) and the testSummary.json text."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.config import SandboxSettings
from pipeline.grading import GradeOptions, SpecError, grade, report_to_json
from pipeline.grading.grader import course_error_report, course_limits
from pipeline.grading.meta import parse_meta
from pipeline.grading.spec import read_yaml
from pipeline.sandbox import SandboxLimits
from tests.grading.builders import make_assignment, outcomes, write_files

SIMPLE_TESTS = """
properties:
  tests:
    - name: values
      entryPoint: ex.py
      tests:
        - name: x
    - name: more
      entryPoint: ex.py
      tests:
        - name: x
          value: 5
"""


def test_an_invalid_test_yaml_is_a_course_error_never_a_zero(tmp_path: Path):
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: a
              tests: []
            - name: b
              tests: []
            - name: c
              tests:
                - name: x
                  qualification: equal
    """, {"ex.py": "x = 1\n"}, {"ex.py": "x = 1\n"})
    report = grade(student, reference)
    expected = ("test.yaml line 11: properties.tests[2].tests[0].qualification: must be one of "
                "verifyEqual, matches, contains, startsWith, endsWith, count, regexp, "
                "got 'equal'")
    assert report.course_error == expected
    assert report.score is None
    assert report.gradehook.test_fraction is None
    data = json.loads(report_to_json(report))
    assert data["gradehook"]["courseError"] == expected
    assert data["gradehook"]["score"] is None
    assert (data["result"], data["resultMessage"], data["tests"]) == ("SKIPPED", expected, [])


def test_an_invalid_meta_yaml_is_a_course_error(tmp_path: Path):
    student, reference = make_assignment(tmp_path, SIMPLE_TESTS, {"ex.py": "x = 1\n"},
                                         {"ex.py": "x = 1\n"},
                                         meta_yaml="properties:\n  additionalFiles: [../x]\n")
    report = grade(student, reference)
    assert report.course_error == ("meta.yaml line 2: properties.additionalFiles[0]: must be a "
                                   "relative path inside the assignment directory, got '../x'")


def test_a_missing_reference_or_course_file_is_a_course_error_naming_it_in_the_repository(
        tmp_path: Path):
    """Students read course errors too: they name the repository's folders, not the host's."""
    repository = tmp_path / "course-reference"
    student = write_files(tmp_path / "student", {"ex.py": "x = 1\n"})
    reference = write_files(repository / "week1" / "ex", {
        "ex.py": "x = 1\n", "test.yaml": SIMPLE_TESTS,
        "meta.yaml": "properties:\n  additionalFiles: [data.csv]\n"})
    options = GradeOptions(dependency_root=repository)

    errors = [grade(student, reference, options=options).course_error,
              grade(student, repository / "week1" / "nowhere", reference,
                    options=options).course_error,
              grade(student, tmp_path / "nowhere", reference).course_error]
    (reference / "meta.yaml").write_text("properties:\n  testFiles: [tests/check.py]\n"
                                         "testDependencies: [week0/helper.py]\n")
    errors.append(grade(student, reference, options=options).course_error)
    (reference / "meta.yaml").write_text("properties:\n  testFiles: [tests/check.py]\n")
    errors.append(grade(student, reference, options=options).course_error)

    assert errors == [
        "meta.yaml line 2: properties.additionalFiles[0]: data.csv does not exist in week1/ex",
        "the reference directory week1/nowhere does not exist",
        "the reference directory nowhere does not exist",
        "meta.yaml line 3: testDependencies[0]: week0/helper.py does not exist in the reference "
        "repository's root",
        "meta.yaml line 2: properties.testFiles[0]: tests/check.py does not exist in week1/ex",
    ]


def test_a_missing_course_file_among_several_is_named_at_its_entrys_line(tmp_path: Path):
    repository = tmp_path / "course-reference"
    student = write_files(tmp_path / "student", {"ex.py": "x = 1\n"})
    reference = write_files(repository / "week1" / "ex", {
        "ex.py": "x = 1\n", "test.yaml": SIMPLE_TESTS, "prices.csv": "1\n",
        "meta.yaml": "slug: ex\nproperties:\n  additionalFiles:\n    - prices.csv\n"
                     "    - data/prices.csv\n"})

    report = grade(student, reference, options=GradeOptions(dependency_root=repository))

    assert report.course_error == ("meta.yaml line 5: properties.additionalFiles[1]: "
                                   "data/prices.csv does not exist in week1/ex; did you mean "
                                   "prices.csv?")


def test_a_course_file_listed_by_another_path_names_the_one_the_folder_has(tmp_path: Path):
    repository = tmp_path / "course-reference"
    student = write_files(tmp_path / "student", {"ex.py": "x = 1\n"})
    reference = write_files(repository / "week2" / "ex", {
        "ex.py": "x = 1\n", "test.yaml": SIMPLE_TESTS, "data/prices.csv": "1\n",
        "tests/check.py": "",
        "meta.yaml": "properties:\n  additionalFiles: [prices.csv]\n"})
    options = GradeOptions(dependency_root=repository)
    errors = [grade(student, reference, options=options).course_error]
    (reference / "meta.yaml").write_text("properties:\n  testFiles: [check.py]\n")
    errors.append(grade(student, reference, options=options).course_error)

    assert errors == [
        "meta.yaml line 2: properties.additionalFiles[0]: prices.csv does not exist in week2/ex; "
        "did you mean data/prices.csv?",
        "meta.yaml line 2: properties.testFiles[0]: check.py does not exist in week2/ex; did "
        "you mean tests/check.py?"]


@pytest.mark.parametrize(("listed", "expected"), [
    ("[data/a/input.txt, data/b/input.txt]",
     "meta.yaml line 2: properties.testFiles[1]: data/b/input.txt and data/a/input.txt would both "
     "be input.txt in the tests' folder, where testFiles are copied by their name alone, without "
     "their folders: give one of them another name"),
    ("[a/data, b/data]",
     "meta.yaml line 2: properties.testFiles[1]: b/data and a/data would both be data in the "
     "tests' folder, where testFiles are copied by their name alone, without their folders: give "
     "one of them another name")])
def test_two_test_files_of_one_name_are_a_course_error_naming_both(tmp_path: Path, listed: str,
                                                                   expected: str):
    """Before, the second of two files silently replaced the first (a test read b's input where
    it meant a's), and the second of two folders failed the run as our error ('File exists')."""
    student, reference = make_assignment(
        tmp_path, SIMPLE_TESTS,
        {"ex.py": "x = 1\n", "data/a/input.txt": "a", "data/b/input.txt": "b",
         "a/data/input.txt": "a", "b/data/input.txt": "b"},
        {"ex.py": "x = 1\n"}, meta_yaml=f"properties:\n  testFiles: {listed}\n")

    assert grade(student, reference).course_error == expected


def test_a_test_files_folder_listed_twice_is_staged_once(tmp_path: Path):
    """Before, the second entry of one folder failed every run as our error ('File exists')."""
    student, reference = make_assignment(
        tmp_path, None,
        {"calc.py": "", "data/input.txt": "3",
         "test_input.py": "from pathlib import Path\n\n\ndef test_input():\n"
                          "    assert (Path(__file__).parent / 'data/input.txt').read_text() "
                          "== '3'\n"},
        {"calc.py": ""}, meta_yaml="properties:\n  testFiles: [data, ./data]\n")

    assert outcomes(grade(student, reference)) == {
        ("test_input.py", "test_input"): ("PASSED", None)}


def test_an_unreadable_test_yaml_is_named_without_its_place_on_the_host(tmp_path: Path):
    (tmp_path / "test.yaml").mkdir()

    with pytest.raises(SpecError) as caught:
        read_yaml(tmp_path / "test.yaml")

    assert str(caught.value) == "test.yaml: (file): cannot be read: Is a directory"


def test_meta_yaml_fields_are_read_and_unknown_keys_accepted():
    meta = parse_meta(yaml.safe_load("""
        slug: week1
        somethingNew: {a: 1}
        testDependencies: [week0/helper.py, {slug: week0.ex1, version: "1.0"}]
        properties:
          studentSubmissionFiles: [ex.py]
          additionalFiles: [data.csv]
          testFiles: [tests/check.py]
          studentTemplates: [template/ex.py]
          hiddenTests: [secret collection]
          maxTestRuns: 10
          maxSubmissions: 3
          executionBackend:
            slug: python
            settings: {timeout: 2.5, memoryLimitMB: 256}
    """))
    assert meta.student_submission_files == ("ex.py",)
    assert meta.additional_files == ("data.csv",)
    assert meta.test_files == ("tests/check.py",)
    assert meta.hidden_tests == ("secret collection",)
    assert meta.test_dependencies == ("week0/helper.py",)
    assert [(d.slug, d.version) for d in meta.slug_dependencies] == [("week0.ex1", "1.0")]
    assert (meta.backend_slug, meta.timeout_seconds, meta.memory_mb) == ("python", 2.5, 256)
    assert (meta.max_test_runs, meta.max_submissions, meta.max_group_size) == (10, 3, 1)
    assert parse_meta(None).backend_slug == "python-itp"


def test_meta_yaml_keys_yaml_reads_as_numbers_or_booleans_are_unknown_keys_too():
    meta = parse_meta(yaml.safe_load("""
        2024: {term: winter}
        yes: 1
        properties:
          on: true
          3: three
          maxSubmissions: 3
          executionBackend:
            no: 0
            settings: {1.5: x, timeout: 2.5}
    """))
    assert (meta.max_submissions, meta.timeout_seconds) == (3, 2.5)


def test_invalid_meta_fields_name_their_path():
    with pytest.raises(SpecError) as caught:
        parse_meta(yaml.safe_load("""
            properties:
              executionBackend:
                settings: {timeout: -1, memoryLimitMB: lots}
              hiddenTests: secret
        """))
    assert str(caught.value).splitlines() == [
        "meta.yaml: properties.hiddenTests: must be a list, got 'secret'",
        "meta.yaml: properties.executionBackend.settings.timeout: must be at least 0, got -1",
        "meta.yaml: properties.executionBackend.settings.memoryLimitMB: must be an integer, "
        "got 'lots'",
    ]


def test_a_meta_yaml_field_at_another_level_or_misspelt_is_refused():
    """Before, each was taken as a key meta.yaml does not know, and lost: the collection `secret`
    was shown to students, and their programs had the configured memory limit, not 256 MB."""
    with pytest.raises(SpecError) as caught:
        parse_meta(yaml.safe_load("""
            hiddenTests: [secret]
            slug: week1
            properties:
              HiddenTests: [secret]
              testDependencies: [week0/helper.py]
              executionBackend:
                settings: {memoryLimitMb: 256, cpus: 2}
        """))
    assert str(caught.value).splitlines() == [
        "meta.yaml: hiddenTests: is not a field here: it belongs under `properties`",
        "meta.yaml: properties.HiddenTests: unknown field; did you mean hiddenTests?",
        "meta.yaml: properties.testDependencies: is not a field here: it belongs at the top "
        "level, beside `properties`",
        "meta.yaml: properties.executionBackend.settings.memoryLimitMb: unknown field; did you "
        "mean memoryLimitMB?",
    ]


def test_meta_timeout_caps_every_run(tmp_path: Path):
    student, reference = make_assignment(
        tmp_path, SIMPLE_TESTS, {"ex.py": "x = 1\n"},
        {"ex.py": "x = 1\nwhile True:\n    pass\n"},
        meta_yaml="properties:\n  executionBackend:\n    settings: {timeout: 0.5}\n")
    report = grade(student, reference)
    assert [c.tests[0].details for c in report.tests] == [
        "E   Failed: Maximum execution time of 0.5 seconds exceeded"] * 2


def test_meta_memory_limit_applies(tmp_path: Path):
    student, reference = make_assignment(
        tmp_path, SIMPLE_TESTS, {"ex.py": "x = 1\n"},
        {"ex.py": "big = bytearray(200 * 1024 * 1024)\nx = 1\n"},
        meta_yaml="properties:\n  executionBackend:\n    settings: {memoryLimitMB: 64}\n")
    run = grade(student, reference).tests[0]
    assert run.status == "CRASHED"
    prefix = f"E   Failed: Execution of {student / 'ex.py'} failed, ERROR: "
    # With cgroups the sandbox stops the run; with rlimits only, the allocation fails.
    assert run.tests[0].details in (prefix + "memory limit of 64 MB exceeded", prefix)


@pytest.mark.parametrize("configured, course, expected", [
    ((180, 1024), {}, (180, 1024)),
    ((180, 1024), {"timeout": 30, "memoryLimitMB": 256}, (30, 256)),
    ((180, 1024), {"timeout": 600, "memoryLimitMB": 4096}, (180, 1024)),
    ((180, 1024), {"timeout": 0}, (180, 1024)),
    ((0, 1024), {"timeout": 30}, (30, 1024)),
    ((0, 1024), {"timeout": 0}, (0, 1024)),
])
def test_meta_yaml_may_lower_the_configured_limits_never_raise_them(configured, course, expected):
    timeout, memory = configured
    limits = SandboxLimits.from_settings(SandboxSettings(timeout_seconds=timeout, memory_mb=memory))
    meta = parse_meta({"properties": {"executionBackend": {"settings": course}}})
    lowered = course_limits(limits, meta)
    assert (lowered.timeout_seconds, lowered.memory_mb) == expected


def test_meta_timeout_cannot_lift_the_configured_timeout(tmp_path: Path):
    student, reference = make_assignment(
        tmp_path, SIMPLE_TESTS, {"ex.py": "x = 1\n"},
        {"ex.py": "import time\nx = 1\ntime.sleep(3)\n"},
        meta_yaml="properties:\n  executionBackend:\n    settings: {timeout: 60}\n")
    report = grade(student, reference, settings=SandboxSettings(timeout_seconds=0.5))
    assert [c.tests[0].details for c in report.tests] == [
        "E   Failed: Maximum execution time of 0.5 seconds exceeded"] * 2


def test_student_files_too_large_for_the_sandbox_are_a_graded_failure(tmp_path: Path):
    student, reference = make_assignment(tmp_path, SIMPLE_TESTS, {"ex.py": "x = 1\n"},
                                         {"ex.py": "x = 1\n"})
    with open(student / "blob\n.bin", "wb") as blob:  # a line break in its name
        blob.truncate(3 * 1024 * 1024)
    (student / ".git").mkdir()
    (student / ".git" / "pack").write_bytes(b"\0" * 4 * 1024 * 1024)
    report = grade(student, reference, settings=SandboxSettings(workdir_size_mb=2),
                   options=GradeOptions(shown_student_dir=Path("/week1/ex")))
    message = ("E   Failed: the files in /week1/ex take 3.0 MB, more than the 2 MB work "
               "directory of the sandbox holds (the largest: /week1/ex/blob\\n.bin, 3.0 MB)")
    assert [(c.status, c.result, [t.details for t in c.tests]) for c in report.tests] == [
        ("FAILED", "FAILED", [message])] * 2
    assert (report.course_error, report.score) == (None, 0.0)
    assert str(student) not in report_to_json(report)


def test_student_files_too_large_fail_every_pytest_file(tmp_path: Path):
    student, reference = make_assignment(
        tmp_path, None, {"calc.py": "", "test_calc.py": "def test_a():\n    pass\n"},
        {"calc.py": ""})
    with open(student / "blob\n.bin", "wb") as blob:  # a line break in its name
        blob.truncate(3 * 1024 * 1024)
    report = grade(student, reference, settings=SandboxSettings(workdir_size_mb=2))
    (calc,) = report.tests
    assert [(t.name, t.result, t.details.split(" take ")[0]) for t in calc.tests] == [
        ("test_calc.py", "FAILED", f"E   Failed: the files in {student}")]


def test_hidden_collections_are_listed(tmp_path: Path):
    student, reference = make_assignment(tmp_path, SIMPLE_TESTS, {"ex.py": "x = 1\n"},
                                         {"ex.py": "x = 1\n"},
                                         meta_yaml="properties:\n  hiddenTests: [more]\n")
    report = grade(student, reference)
    assert report.gradehook.hidden == ["more"]
    assert json.loads(report_to_json(report))["gradehook"]["hidden"] == ["more"]


def test_a_hidden_tests_entry_naming_no_collection_is_a_course_error_showing_students_its_place(
        tmp_path: Path):
    """Before, an entry naming no collection (`mre` for `more`) hid nothing: the collection
    staff meant to hide was graded and shown to students, its tests and expected values with it.
    It is now the course's mistake, named at its line with the collection it likely means."""
    student, reference = make_assignment(
        tmp_path, SIMPLE_TESTS, {"ex.py": "x = 5\n"}, {"ex.py": "x = 1\n"},
        meta_yaml="properties:\n  hiddenTests:\n    - values\n    - mre\n    - absent\n")
    report = grade(student, reference)
    assert (report.gradehook.score, report.tests) == (None, [])
    assert report.gradehook.course_error.splitlines() == [
        "meta.yaml line 4: properties.hiddenTests[1]: test.yaml has no collection named 'mre', "
        "so this entry hides nothing; did you mean more?",
        "meta.yaml line 5: properties.hiddenTests[2]: test.yaml has no collection named "
        "'absent', so this entry hides nothing"]
    assert report.gradehook.course_error_for_students.splitlines() == [
        "meta.yaml line 4: properties.hiddenTests[1]: a problem with a hidden test",
        "meta.yaml line 5: properties.hiddenTests[2]: a problem with a hidden test",
        "the course's staff see the whole cause in GET /api/runs"]


@pytest.mark.parametrize(("name", "read"), [("01", "1"), ("1.50", "1.5")])
def test_a_hidden_tests_entry_yaml_reads_as_a_number_names_the_collection_to_quote(
        tmp_path: Path, name: str, read: str):
    """A collection named '01' in quotes, and hiddenTests: [01] without: YAML reads the entry
    as the number 1, and staff were told only that test.yaml has no collection named '1'."""
    student, reference = make_assignment(
        tmp_path, SIMPLE_TESTS.replace("name: more", f"name: '{name}'"), {"ex.py": "x = 5\n"},
        {"ex.py": "x = 1\n"}, meta_yaml=f"properties:\n  hiddenTests: [{name}]\n")
    assert grade(student, reference).gradehook.course_error == (
        f"meta.yaml line 2: properties.hiddenTests[0]: test.yaml has no collection named "
        f"'{read}', so this entry hides nothing; did you mean {name}? YAML reads {name} "
        f"without quotes as the number {read}: write '{name}'")


def test_a_hidden_tests_entry_naming_no_collection_is_refused_before_test_yamls_own_problems(
        tmp_path: Path):
    """A problem of test.yaml in a collection reads whole for students unless the collection is
    hidden: with the entry misspelt, the hidden collection's would have read whole."""
    student, reference = make_assignment(
        tmp_path, SIMPLE_TESTS.replace("value: 5", "value: 5\n          typeCheck: secret"),
        {"ex.py": "x = 5\n"}, {"ex.py": "x = 1\n"},
        meta_yaml="properties:\n  hiddenTests: [mre]\n")
    report = grade(student, reference)
    assert report.gradehook.course_error_for_students.splitlines() == [
        "meta.yaml line 2: properties.hiddenTests[0]: a problem with a hidden test",
        "the course's staff see the whole cause in GET /api/runs"]


def test_a_visible_collections_run_never_looks_up_what_a_hidden_collection_does(tmp_path: Path):
    # A visible collection shows the student's values: a run it shared with a hidden collection
    # of the same entry point let the student's code hand back the hidden tests it read.
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: visible
              entryPoint: ex.py
              tests:
                - name: looked_up
            - name: secret
              entryPoint: ex.py
              tests:
                - name: f(4711)
    """, {"ex.py": "looked_up = ['looked_up']\ndef f(n):\n    return n\n"}, {"ex.py": """
        import json
        with open("/opt/gradehook/run/request.json") as request:
            looked_up = json.load(request)["evaluate"]["values"]
        def f(n):
            return n
    """}, meta_yaml="properties:\n  hiddenTests: [secret]\n")
    report = grade(student, reference)
    assert outcomes(report) == {("visible", "looked_up"): ("PASSED", None),
                                ("secret", "f(4711)"): ("PASSED", None)}


def test_the_assignment_directory_may_differ_from_the_reference(tmp_path: Path):
    assignment = write_files(tmp_path / "assignment", {"test.yaml": SIMPLE_TESTS})
    student = write_files(tmp_path / "student", {"ex.py": "x = 5\n"})
    reference = write_files(tmp_path / "reference", {"ex.py": "x = 5\n"})
    report = grade(student, reference, assignment)
    assert (report.result, report.gradehook.score) == ("PASSED", 1.0)


def test_report_json_has_testsummary_key_order_and_no_nulls(tmp_path: Path):
    student, reference = make_assignment(tmp_path, SIMPLE_TESTS, {"ex.py": "x = 1\n"},
                                         {"ex.py": "x = 1\n"})
    report = grade(student, reference)
    text = report_to_json(report)
    data = json.loads(text)
    assert text.startswith('{\n  "timestamp": "')
    assert list(data) == ["timestamp", "type", "version", "name", "description", "status",
                          "result", "summary", "resultMessage", "duration",
                          "executionDuration", "environment", "properties", "debug", "tests",
                          "gradehook"]
    assert list(data["tests"][0]) == ["type", "name", "status", "result", "summary",
                                      "duration", "executionDuration", "debug", "tests"]
    assert list(data["tests"][0]["tests"][0]) == ["name", "result"]
    assert data["summary"] == {"total": 2, "passed": 1, "failed": 1, "skipped": 0}
    assert data["tests"][1]["tests"][0] == {
        "name": "x", "result": "FAILED",
        "details": "E   AssertionError: Variable `x` has incorrect value (`1` instead of `5`)",
        "debug": {"expected": "5", "actual": "1"}}
    assert list(data["debug"]) == ["executionDurationStudent", "executionDurationReference"]
    assert list(data["properties"]) == ["test", "specification", "pytestflags", "exitcode"]
    assert data["properties"]["exitcode"] == "1"
    assert "null" not in text.split('"gradehook"')[0]
    assert list(data["gradehook"]) == ["score", "testsPassed", "testsTotal", "testFraction",
                                       "collectionsPassed", "collectionsTotal", "timings",
                                       "engineVersion", "mode", "courseError",
                                       "courseErrorForStudents", "hidden"]
    assert (data["gradehook"]["score"], data["gradehook"]["testFraction"]) == (0.5, 0.5)


def test_a_report_names_its_test_yaml_within_the_assignment_not_on_the_host(tmp_path: Path):
    """Before, properties.test held test.yaml's place on the grading host (the reference
    cache's folder), which the ledger kept and GET /api/runs showed."""
    student, reference = make_assignment(tmp_path, SIMPLE_TESTS, {"ex.py": "x = 1\n"},
                                         {"ex.py": "x = 1\n"})
    text = report_to_json(grade(student, reference))
    assert json.loads(text)["properties"]["test"] == "test.yaml"
    assert str(tmp_path) not in text


def test_a_report_names_no_place_of_the_workers_python_on_the_host(tmp_path: Path):
    """Before, environment.executable held the worker's python on the grading host (its
    virtual environment's folder), which the ledger kept and GET /api/runs showed; it was not
    even the python the sandbox ran the solutions with."""
    student, reference = make_assignment(tmp_path, SIMPLE_TESTS, {"ex.py": "x = 1\n"},
                                         {"ex.py": "x = 1\n"})
    for report in (grade(student, reference), course_error_report("test.yaml is missing")):
        text = report_to_json(report)
        assert set(json.loads(text)["environment"]) == {"python", "platform", "engine"}
        assert sys.prefix not in text


def test_a_report_names_the_grading_hosts_system_without_its_kernel(tmp_path: Path):
    """Before, environment.platform was platform.platform(), 'Linux-6.1.0-13-amd64-x86_64-with-
    glibc2.36': the grading host's kernel release and build, which the ledger kept and GET
    /api/runs showed, and which tell which kernel fixes the host lacks."""
    student, reference = make_assignment(tmp_path, SIMPLE_TESTS, {"ex.py": "x = 1\n"},
                                         {"ex.py": "x = 1\n"})
    for report in (grade(student, reference), course_error_report("test.yaml is missing")):
        text = report_to_json(report)
        assert json.loads(text)["environment"]["platform"].startswith(
            f"{platform.system()}-{platform.machine()}")
        assert platform.release() not in text


@pytest.mark.parametrize("test_yaml", ["", "name: empty\n", "properties:\n  tests: []\n"])
def test_no_collections_is_skipped_with_no_tests_specified_and_a_course_error(
        tmp_path: Path, test_yaml: str):
    student, reference = make_assignment(tmp_path, test_yaml, {"ex.py": "x = 1\n"},
                                         {"ex.py": "x = 1\n"})
    report = grade(student, reference)
    data = json.loads(report_to_json(report))
    assert (data["status"], data["result"], data["resultMessage"], data["summary"]["total"],
            data["properties"]["exitcode"]) == (
        "COMPLETED", "SKIPPED", "No Tests specified", 0, "5")
    assert (report.score, report.course_error) == (
        None, "test.yaml: properties.tests: lists no test collections, so there is nothing to "
              "grade")


def test_a_comparison_with_nothing_to_compare_is_a_course_error(tmp_path: Path):
    student, reference = make_assignment(tmp_path, None, {}, {"ex.py": "x = 1\n"})
    report = grade(student, reference)
    assert (report.result, report.result_message, report.score) == (
        "SKIPPED", "No Tests specified", None)
    assert report.course_error == ("the reference holds no test.yaml, no test_*.py and no file "
                                   "to compare the student's with, so there is nothing to grade")
