"""`gradehook submissions`: a table of submissions, each student's final one, and CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io

from pipeline.ledger.models import RunStatus
from gradehook.submissions_cli import CSV_HEADER
from tests.cli.commands import ASSIGNMENT, COURSE, gradehook
from tests.infra.ledger import add_submission, end_run, migrated_resources, queue_run

T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.timezone.utc)


def seed(settings) -> list[str]:
    """alice: accepted 10:00 (50 %), accepted late 12:00 (100 %), refused 13:00; bob: accepted
    11:00 (75 %)."""
    resources = migrated_resources(settings)
    return [
        add_submission(resources, commit_sha="a" * 40, counted_at=T0, score=0.5),
        add_submission(resources, commit_sha="b" * 40, counted_at=T0 + dt.timedelta(hours=2),
                       score=1.0, late=True),
        add_submission(resources, commit_sha="c" * 40, counted_at=T0 + dt.timedelta(hours=3),
                       outcome="refused", reason="handed in after the deadline"),
        add_submission(resources, commit_sha="d" * 40, counted_at=T0 + dt.timedelta(hours=1),
                       score=0.75, project_path="students/bob", merge_request_iid=None),
    ]


def test_submissions_are_listed_newest_first_with_their_scores(service_settings):
    config, settings = service_settings({"courses": [COURSE]})
    seed(settings)

    everything = gradehook(config, "submissions")
    late = gradehook(config, "submissions", "--late")

    assert [line.split() for line in everything.output.splitlines()] == [
        ["PROJECT", "ASSIGNMENT", "COMMIT", "OUTCOME", "LATE", "SCORE", "TESTS", "RECEIVED",
         "(UTC)"],
        ["students/alice", ASSIGNMENT, "c" * 12, "refused", "-", "-", "-", "2026-03-01",
         "13:00"],
        ["students/alice", ASSIGNMENT, "b" * 12, "accepted", "late", "100%", "4/4",
         "2026-03-01", "12:00"],
        ["students/bob", ASSIGNMENT, "d" * 12, "accepted", "-", "75%", "3/4", "2026-03-01",
         "11:00"],
        ["students/alice", ASSIGNMENT, "a" * 12, "accepted", "-", "50%", "2/4", "2026-03-01",
         "10:00"],
        ["4", "of", "4", "submission(s)"]]
    assert late.output.splitlines()[-1] == "1 of 1 submission(s)"


def test_a_course_that_is_not_configured_is_said_to_be_none(service_settings):
    """Before, a misspelt course gave an empty gradebook and said nothing: as a course with
    nothing handed in yet."""
    config, settings = service_settings({"courses": [COURSE]})
    seed(settings)

    misspelt = gradehook(config, "submissions", "--final", "--csv", "--course", "prgo1")
    listed = gradehook(config, "submissions", "--course", "prog1")

    assert misspelt.exit_code == 0
    assert misspelt.stdout.splitlines() == [",".join(CSV_HEADER)]
    assert misspelt.stderr == ("gradehook: no course named 'prgo1' is configured; did you mean "
                               "prog1?\n")
    assert listed.stderr == ""


def test_final_submissions_as_csv_for_a_gradebook(service_settings):
    config, settings = service_settings({"courses": [COURSE]})
    seed(settings)

    exported = gradehook(config, "submissions", "--final", "--csv", "--course", "prog1")

    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["project"], r["commit"][:1], r["score"], r["tests_passed"], r["late"],
             r["received_at"], r["merge_request"]) for r in rows] == [
        ("students/alice", "b", "1.0", "4", "true", "2026-03-01T12:00:00+00:00", "3"),
        ("students/bob", "d", "0.75", "3", "false", "2026-03-01T11:00:00+00:00", "")]
    assert rows[0]["result_url"].startswith(settings.server.base_url + "/results/")


def test_the_gradebook_has_a_line_for_each_known_student_without_a_grade(service_settings):
    """carol's one hand-in came late, erin's second was over the limit after her first was
    refused for changing files outside, dave only tested his code. Before, none of them had a
    line: staff compared the gradebook with the class list by hand."""
    config, settings = service_settings({"courses": [COURSE]})
    seed(settings)
    resources = migrated_resources(settings)
    add_submission(resources, commit_sha="e" * 40, counted_at=T0, outcome="refused", late=True,
                   project_path="students/carol",
                   reason="handed in after the deadline of 2026-03-01 09:00:00 UTC: ...")
    add_submission(resources, commit_sha="f" * 40, counted_at=T0, outcome="refused",
                   project_path="students/erin",
                   reason="the submission changes files outside week1/hello/: x.py")
    add_submission(resources, commit_sha="1" * 40, counted_at=T0 + dt.timedelta(hours=1),
                   outcome="refused", project_path="students/erin",
                   reason="the limit of 1 accepted submission of week1/hello is reached")
    end_run(resources, queue_run(resources, commit_sha="2" * 40, project_path="students/dave",
                                 assignment="week2/loops").id, RunStatus.FAILED)
    queue_run(resources, commit_sha="3" * 40, project_path="students/zoe", course="prog2")

    exported = gradehook(config, "submissions", "--final", "--csv")
    dave = gradehook(config, "submissions", "--final", "--csv", "--project", "students/dave")
    on_time = gradehook(config, "submissions", "--final", "--csv", "--on-time")

    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert list(rows[0])[:13] == ["project", "assignment", "commit", "outcome", "late",
                                  "score", "tests_passed", "tests_total", "received_at",
                                  "deadline", "merge_request", "reason", "result_url"]
    assert [(r["project"], r["assignment"], r["commit"][:1], r["outcome"], r["score"],
             r["missing"]) for r in rows] == [
        ("students/alice", ASSIGNMENT, "b", "accepted", "1.0", ""),
        ("students/bob", ASSIGNMENT, "d", "accepted", "0.75", ""),
        ("students/carol", ASSIGNMENT, "", "", "", "refused: late"),
        ("students/dave", ASSIGNMENT, "", "", "", "no submission"),
        ("students/erin", ASSIGNMENT, "", "", "", "refused: over the limit")]
    assert [(r["project"], r["missing"]) for r in csv.DictReader(io.StringIO(dave.stdout))] == \
        [("students/dave", "no submission")]
    assert [r["project"] for r in csv.DictReader(io.StringIO(on_time.stdout))] == \
        ["students/bob"]


def test_the_final_table_lists_the_grades_the_gradebook_lacks_on_every_page(service_settings):
    """Before, `submissions --final` showed only the accepted submissions: carol, refused
    late, and dave, who only tested his code, were in the CSV and the API's missing, not in
    the table."""
    config, settings = service_settings({"courses": [COURSE]})
    seed(settings)
    resources = migrated_resources(settings)
    add_submission(resources, commit_sha="e" * 40, counted_at=T0, outcome="refused", late=True,
                   project_path="students/carol",
                   reason="handed in after the deadline of 2026-03-01 09:00:00 UTC: ...")
    end_run(resources, queue_run(resources, commit_sha="2" * 40, project_path="students/dave",
                                 assignment="week2/loops").id, RunStatus.FAILED)

    final = gradehook(config, "submissions", "--final")
    second_page = gradehook(config, "submissions", "--final", "--limit", "1", "--page", "2")
    refused = gradehook(config, "submissions", "--outcome", "refused")

    missing = [[], "2 grade(s) missing (no accepted submission):".split(),
               ["PROJECT", "ASSIGNMENT", "MISSING"],
               ["students/carol", ASSIGNMENT, "refused:", "late"],
               ["students/dave", ASSIGNMENT, "no", "submission"]]
    assert [line.split()[:2] for line in final.stdout.splitlines()[:3]] == [
        ["PROJECT", "ASSIGNMENT"], ["students/alice", ASSIGNMENT], ["students/bob", ASSIGNMENT]]
    assert [line.split() for line in final.stdout.splitlines()[3:]] == \
        ["2 of 2 submission(s)".split(), *missing]
    assert [line.split() for line in second_page.stdout.splitlines()[2:]] == \
        ["1 of 2 submission(s)".split(), *missing]
    assert "missing" not in refused.output


def test_the_gradebook_shows_a_regrade_of_the_final_commit(service_settings):
    """Staff fix a test of the reference and regrade the assignment: the final submission's
    commit is graded again, and the gradebook takes that grade. Before, it kept the score of
    the run the submission was decided on, the one the faulty test gave."""
    config, settings = service_settings({"courses": [COURSE]})
    resources = migrated_resources(settings)
    add_submission(resources, commit_sha="a" * 40, counted_at=T0, score=0.75)
    regrade = queue_run(resources, commit_sha="a" * 40, kind="regrade")
    end_run(resources, regrade.id, RunStatus.PASSED, score=1.0, tests_passed=4, tests_total=4)
    later_error = queue_run(resources, commit_sha="a" * 40, kind="regrade")
    end_run(resources, later_error.id, RunStatus.ERROR)

    exported = gradehook(config, "submissions", "--final", "--csv")
    table = gradehook(config, "submissions")

    row, = csv.DictReader(io.StringIO(exported.stdout))
    assert (row["score"], row["tests_passed"], row["result_url"]) == (
        "1.0", "4", f"{settings.server.base_url}/results/{regrade.id}")
    assert table.output.splitlines()[1].split()[4:7] == ["-", "100%", "4/4"]


def test_final_with_another_outcome_is_a_usage_error(service_settings):
    config, _ = service_settings({"courses": [COURSE]})

    refused = gradehook(config, "submissions", "--final", "--outcome", "refused")

    assert refused.exit_code == 2
    assert "'--final' lists accepted submissions: leave '--outcome' out" in refused.output


def test_a_reason_naming_a_students_file_stays_in_its_cell(service_settings):
    # Git lets a file name hold a carriage return, a line feed, a comma or a quote: each stays
    # inside the quoted reason, so a spreadsheet reads one row per submission.
    config, settings = service_settings({"courses": [COURSE]})
    reasons = ["the submission changes files outside week1/hello/: notes\r.txt",
               'the submission changes files outside week1/hello/: a\nb.py, "c,d".py']
    resources = migrated_resources(settings)
    for sha, reason in zip(("a" * 40, "b" * 40), reasons):
        add_submission(resources, commit_sha=sha, counted_at=T0, outcome="refused",
                       reason=reason)

    exported = gradehook(config, "submissions", "--csv")

    rows = list(csv.DictReader(io.StringIO(exported.stdout, newline="")))
    assert sorted(r["reason"] for r in rows) == sorted(reasons)


def test_times_are_in_utc_whatever_postgresqls_time_zone(service_settings, monkeypatch):
    config, settings = service_settings({"courses": [COURSE]})
    seed(settings)
    monkeypatch.setenv("PGTZ", "Asia/Kathmandu")  # libpq's session time zone: UTC+05:45

    table = gradehook(config, "submissions", "--project", "students/bob")
    exported = gradehook(config, "submissions", "--csv", "--project", "students/bob")

    assert table.output.splitlines()[1].split()[-2:] == ["2026-03-01", "11:00"]
    assert [r["received_at"] for r in csv.DictReader(io.StringIO(exported.stdout))] == \
        ["2026-03-01T11:00:00+00:00"]
