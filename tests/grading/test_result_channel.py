"""The sandbox's result channel: what a student's program writes to it cannot break the run."""

from __future__ import annotations

import json

import pytest

from pipeline.grading.execution import ENTRY_SECONDS_UNREAL, MAX_RESULT_LINE_BYTES, \
    ResultTooLarge, _last_document, interpret
from pipeline.grading.plan import RunRequest, Stage
from pipeline.grading.pytest_mode import _events
from pipeline.grading import runner
from pipeline.grading.runner import MESSAGE_LIMIT
from pipeline.sandbox import SandboxLimits, SandboxResult
from pipeline.sandbox.model import DEFAULT_MAX_RESULT_BYTES

DOCUMENT = {"error": None, "values": {"greeting": "hi\x00there\udc80"}, "stdout": "a\x00b"}
SHOWN_ENTRY = "/week1/ex/ex.py"
CRASHED_BECAUSE = f"Execution of {SHOWN_ENTRY} failed, ERROR: "
MALFORMED = CRASHED_BECAUSE + "the run handed back a malformed result: "
RAISED_PROBLEM = ("what an entry of {key} raised must be an error's text, with a file, line "
                  "number and line of the solution or none")
EXITED_PROBLEM = "exited_at must be null or a file, line number and line of the solution"
REQUEST = RunRequest("student", 0, (Stage("ex.py", ("y = 1",), (), (), 2.0),), "ex.py", True,
                     values=("x",), texts=("x",))
LIMITS = SandboxLimits(timeout_seconds=2, cpu_seconds=5, memory_mb=64, max_processes=4,
                       max_file_size_mb=1, max_open_files=16, workdir_size_mb=1,
                       max_output_bytes=1024)


def _channel(*lines: str) -> bytes:
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def _document(**fields) -> dict:
    document = {"error": None, "entry_seconds": 0.25, "stdout": "out\n", "stdout_truncated": False,
                "figures": [], "values": {"x": {"found": True, "value": {"t": "int", "v": "0x1"}}},
                "texts": {"x": {"found": True, "text": "1"}}, "evals": {}}
    document.update(fields)
    return document


def _interpret(channel: bytes, exit_code: int = 0, killed_reason: str | None = None):
    result = SandboxResult(exit_code=exit_code, signal=None, timed_out=False,
                           killed_reason=killed_reason, stdout=b"", stderr=b"",
                           output_truncated=False, duration_seconds=0.5, result_data=channel)
    return interpret(result, REQUEST, 2.0, SHOWN_ENTRY, LIMITS)


def test_values_reach_the_comparison_as_the_program_made_them():
    # NUL and a lone surrogate are only made storable when the report is recorded.
    assert _last_document(_channel(json.dumps(DOCUMENT))) == DOCUMENT


def test_a_line_nested_too_deeply_to_read_is_skipped():
    deep = "[" * 100_000 + "]" * 100_000
    assert _last_document(_channel(json.dumps(DOCUMENT), deep)) == DOCUMENT
    assert _last_document(_channel(deep)) is None


def test_a_line_over_the_cap_is_refused_without_being_parsed(monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("parsed")

    monkeypatch.setattr(json, "loads", never)
    huge = b"[" + b"{}," * (MAX_RESULT_LINE_BYTES // 3) + b"{}]"
    with pytest.raises(ResultTooLarge):
        _last_document(huge)


def test_the_channel_holds_no_more_than_the_engine_parses():
    assert DEFAULT_MAX_RESULT_BYTES <= MAX_RESULT_LINE_BYTES + 2


def test_a_result_line_over_the_cap_crashes_the_run():
    huge = json.dumps(_document(stdout="x" * MAX_RESULT_LINE_BYTES)).encode()
    outcome = _interpret(b"\n" + huge + b"\n")
    assert (outcome.status, outcome.message) == (
        "CRASHED", CRASHED_BECAUSE + "the values to compare exceed the result size limit")


def test_a_well_formed_document_is_read():
    outcome = _interpret(_channel(json.dumps(_document())))
    assert (outcome.status, outcome.entry_seconds, outcome.stdout) == ("COMPLETED", 0.25, "out\n")
    assert outcome.values == {"x": {"found": True, "value": {"t": "int", "v": "0x1"}}}
    assert outcome.texts == {"x": {"found": True, "text": "1"}}


SHADOWED = {"module": "random", "folder": False, "standard": True}
SHADOWED_PROBLEM = "what a traceback's shadowed module is must be a module's name and two flags"


def test_a_module_of_the_solutions_python_passed_over_is_read():
    """The module an error is about that Python passed over for another of its name comes with
    a crash's last frame, or with what a test's name raised."""
    error = {"step": "entry", "kind": "exception", "message": "cannot import name 'pick'",
             "traceback": {"filename": "ex.py", "lineno": 1, "shadowed": SHADOWED}}
    raised = {"error": "AttributeError: module 'random' has no attribute 'pick'",
              "shadowed": SHADOWED}
    outcome = _interpret(_channel(json.dumps(_document(
        error=error, values={"x": {"found": False, "raised": raised}}))))
    assert outcome.traceback == {"filename": "ex.py", "lineno": 1, "shadowed": SHADOWED}
    assert outcome.values == {"x": {"found": False, "raised": raised}}


@pytest.mark.parametrize("fields, problem", [
    *[({"error": {"step": "entry", "kind": "exception", "message": "m",
                  "traceback": {"shadowed": shadowed}}}, SHADOWED_PROBLEM)
      for shadowed in ("random", {**SHADOWED, "standard": 1}, {**SHADOWED, "module": "a b"},
                       {"module": "random", "folder": False})],
    ({"entry_seconds": "abc"}, ENTRY_SECONDS_UNREAL),
    ({"entry_seconds": -1}, ENTRY_SECONDS_UNREAL),
    ({"entry_seconds": True}, ENTRY_SECONDS_UNREAL),
    ({"entry_seconds": 0.75}, ENTRY_SECONDS_UNREAL),  # the run took 0.5 s
    ({"entry_seconds": 1.7e308}, ENTRY_SECONDS_UNREAL),
    ({"entry_seconds": 10 ** 400}, ENTRY_SECONDS_UNREAL),  # too large for a float
    ({"error": "boom"}, "error must be null or name a step and a kind the runner uses"),
    ({"error": {"step": "entry", "kind": "crash"}},
     "error must be null or name a step and a kind the runner uses"),
    ({"error": {"step": "entry", "kind": "exception"}}, "the message of an error must be text"),
    ({"error": {"step": "entry", "kind": "exception", "message": "m", "traceback": "t"}},
     "a traceback must be an object of the last frame's fields"),
    ({"error": {"step": "entry", "kind": "exception", "message": "m",
                "traceback": {"lineno": "3"}}}, "the lineno of a traceback must be a whole number"),
    ({"error": {"step": "entry", "kind": "exception", "message": "m",
                "traceback": {"line": ["x"]}}}, "the line of a traceback must be text"),
    ({"error": {"step": "entry", "kind": "exception", "message": "m",
                "traceback": {"solutionFrame": "ex.py"}}},
     "a traceback must be an object of the last frame's fields"),
    ({"error": {"step": "entry", "kind": "exception", "message": "m",
                "traceback": {"solutionFrame": {"filename": "ex.py", "lineno": 2,
                                                "solutionFrame": {}}}}},
     "a traceback must be an object of the last frame's fields"),
    ({"error": {"step": "entry", "kind": "exception", "message": "m",
                "traceback": {"solutionFrame": {"lineno": 2.5}}}},
     "the lineno of a traceback must be a whole number"),
    ({"stdout": 5}, "stdout must be text"),
    ({"values": []}, "values must be an object"),
    ({"values": {"x": 5}}, "an entry of values must be an object with found true or false"),
    ({"values": {"x": {"found": "yes"}}},
     "an entry of values must be an object with found true or false"),
    ({"values": {"x": {"found": True}}}, "a found entry of values must hold a value"),
    ({"evals": {"e": {"found": True, "untransferable": 3}}},
     "an untransferable entry of evals must name its type as text"),
    ({"texts": {"x": {"found": True, "text": 1}}},
     "a found entry of texts must hold a text or an error"),
    ({"values": {"x": {"found": False, "raised": "boom"}}},
     RAISED_PROBLEM.format(key="values")),
    ({"texts": {"x": {"found": False, "raised": {"error": 3}}}},
     RAISED_PROBLEM.format(key="texts")),
    ({"values": {"x": {"found": False, "raised": {
        "error": "E", "file": "a.py", "lineno": True, "line": None}}}},
     RAISED_PROBLEM.format(key="values")),
    ({"values": {"x": {"found": False, "raised": {"error": "E", "path": "/etc"}}}},
     RAISED_PROBLEM.format(key="values")),
    ({"values": {"x": {"found": False, "flooded": "the reference printed for ever"}}},
     "a flooded entry of values must have flooded true"),
    ({"exited_at": "ex.py, line 2"}, EXITED_PROBLEM),
    ({"exited_at": {"file": "ex.py", "lineno": 0, "line": "exit()"}}, EXITED_PROBLEM),
    ({"exited_at": {"file": "ex.py", "lineno": 2}}, EXITED_PROBLEM),
    ({"exited_at": {"file": "ex.py", "lineno": 2, "line": "exit()", "error": "E"}},
     EXITED_PROBLEM),
    ({"exited_at": {"file": None, "lineno": 2, "line": "exit()"}}, EXITED_PROBLEM),
    ({"figures": {}}, "figures must be a list of at most 1000"),
    ({"figures": [{"number": 1, "png": "not base64!"}]},
     "a figure must have a number of at most 9 digits and a base64 PNG"),
])
def test_a_malformed_document_is_a_crash_of_the_program(fields, problem):
    outcome = _interpret(_channel(json.dumps(_document(**fields))))
    assert (outcome.status, outcome.message) == ("CRASHED", MALFORMED + problem)


def test_nan_and_infinity_are_not_json_and_the_line_is_no_document():
    line = json.dumps(_document(entry_seconds=float("inf")))
    assert "Infinity" in line
    assert _last_document(_channel(line)) is None
    outcome = _interpret(_channel(line))
    assert outcome.message == CRASHED_BECAUSE + "process ended unexpectedly with exit code 0"


def test_a_number_too_large_for_a_float_is_no_duration():
    line = json.dumps(_document(entry_seconds=0)).replace('"entry_seconds": 0',
                                                          '"entry_seconds": 1e400')
    outcome = _interpret(_channel(line))
    assert outcome.message == MALFORMED + ENTRY_SECONDS_UNREAL


def test_messages_and_traceback_texts_the_program_controls_are_cut():
    long_text = "A" * (MESSAGE_LIMIT * 5)
    note = f" [... cut: {MESSAGE_LIMIT * 5} characters in all]"
    cut = "A" * (MESSAGE_LIMIT - len(note)) + note
    error = {"step": "entry", "kind": "exception", "message": long_text,
             "traceback": {"name": long_text, "filename": "/sandbox/work/ex.py", "lineno": 3,
                           "line": long_text, "errormsg": long_text, "raised": long_text,
                           "solutionFrame": {"filename": long_text, "lineno": 2,
                                             "line": long_text}}}
    outcome = _interpret(_channel(json.dumps(_document(
        error=error, texts={"x": {"found": True, "error": long_text}},
        values={"x": {"found": True, "untransferable": long_text, "reason": long_text},
                "y": {"found": False, "raised": {"error": long_text, "file": long_text,
                                                 "lineno": 2, "line": long_text}}}))))
    assert (outcome.status, outcome.message) == ("CRASHED", CRASHED_BECAUSE + cut)
    assert outcome.traceback == {"name": cut, "filename": "/sandbox/work/ex.py", "lineno": 3,
                                 "line": cut, "errormsg": cut, "raised": cut,
                                 "solutionFrame": {"filename": cut, "lineno": 2, "line": cut}}
    assert outcome.texts["x"]["error"] == cut
    assert outcome.values["x"] == {"found": True, "untransferable": cut, "reason": cut}
    assert outcome.values["y"] == {"found": False, "raised": {"error": cut, "file": cut,
                                                              "lineno": 2, "line": cut}}


def test_where_the_program_exited_is_read_and_cut():
    """Where the entry point ended with sys.exit(0) comes through the channel the program can
    write to: its texts are cut as a raised entry's are, and the run still completes."""
    long_text = "A" * (MESSAGE_LIMIT * 5)
    cut = runner.shorten(long_text)
    outcome = _interpret(_channel(json.dumps(_document(
        exited_at={"file": long_text, "lineno": 4, "line": long_text}))))
    assert outcome.status == "COMPLETED"
    assert outcome.exited_at == {"file": cut, "lineno": 4, "line": cut}
    assert _interpret(_channel(json.dumps(_document(
        exited_at={"file": "ex.py", "lineno": 4, "line": None})))).exited_at == {
        "file": "ex.py", "lineno": 4, "line": None}


@pytest.mark.parametrize("traceback, problem", [
    ("calc.py", "a traceback must be an object of the last frame's fields"),
    ({"filename": "calc.py", "lineno": 5, "path": "/etc/passwd"},
     "a traceback must be an object of the last frame's fields"),
    ({"filename": "calc.py", "lineno": True}, "the lineno of a traceback must be a whole number"),
    ({"filename": ["calc.py"], "lineno": 5}, "the filename of a traceback must be text"),
])
def test_where_a_timed_out_run_was_stopped_is_checked_as_a_crash_frame(traceback, problem):
    """The line a run's timer stopped comes through the channel the program can write to: it
    is refused when malformed, as a crash's last frame is (it was not read at all)."""
    error = {"step": "entry", "kind": "timeout", "traceback": traceback}
    outcome = _interpret(_channel(json.dumps(_document(error=error))))
    assert (outcome.status, outcome.message) == ("CRASHED", MALFORMED + problem)


def test_where_a_timed_out_run_was_stopped_is_cut_and_keeps_the_timeout_message():
    """A timeout is no exception of the program's: a `raised`, `solutionFrame` or `shadowed` in
    its frame is left out."""
    long_text = "A" * (MESSAGE_LIMIT * 5)
    cut = runner.shorten(long_text)
    error = {"step": "setup", "kind": "timeout",
             "traceback": {"name": "spin", "filename": long_text, "lineno": 7, "line": long_text,
                           "errormsg": "forged", "raised": "NameError: forged",
                           "solutionFrame": {"filename": "ex.py", "lineno": 1, "line": "x"},
                           "shadowed": SHADOWED}}
    outcome = _interpret(_channel(json.dumps(_document(error=error))))
    message = "Maximum execution time of 2.0 seconds exceeded"
    assert (outcome.status, outcome.message) == ("TIMEDOUT", message)
    assert outcome.traceback == {"name": "spin", "filename": cut, "lineno": 7, "line": cut,
                                 "errormsg": message}


def test_pytest_events_of_the_wrong_shape_are_left_out():
    good = {"event": "test", "nodeid": "test_a.py::test_b", "outcome": "passed", "message": ""}
    lines = [
        json.dumps(good),
        "[" * 100_000 + "]" * 100_000,
        json.dumps({"event": "collected", "tests": 5}),
        json.dumps({"event": "collected", "tests": [1, 2]}),
        json.dumps({"event": "test", "nodeid": "x", "outcome": ["passed"], "message": ""}),
        json.dumps({"event": "done", "exit": float("nan")}),
        json.dumps({"event": "done", "exit": True}),
        json.dumps({"event": "unknown"}),
        json.dumps({"event": "collected", "tests": ["t" * MAX_RESULT_LINE_BYTES]}),
    ]
    assert _events(_channel(*lines)) == [good]


def test_a_cut_message_is_as_long_as_the_limit_and_cut_once():
    text = "x" * (MESSAGE_LIMIT + 1)
    assert len(runner.shorten(text)) == MESSAGE_LIMIT
    assert runner.shorten(runner.shorten(text)) == runner.shorten(text)


def test_a_process_the_process_limit_refused_fails_the_run_on_that_limit():
    def outcome(message: str, killed_reason: str | None):
        error = {"step": "entry", "kind": "exception", "message": message,
                 "traceback": {"lineno": 3, "line": "os.fork()"}}
        found = _interpret(_channel(json.dumps(_document(error=error))),
                           killed_reason=killed_reason)
        return found.status, found.message, found.traceback

    refused = "[Errno 11] Resource temporarily unavailable"
    # The program ended on os.fork's error before the sandbox stopped it: as if it had.
    assert outcome(refused, "processes") == (
        "CRASHED", CRASHED_BECAUSE + "process limit of 4 exceeded", {})
    # Without the sandbox's word, or on another error, the error is the program's own.
    frame = {"lineno": 3, "line": "os.fork()"}
    assert outcome(refused, None) == ("CRASHED", CRASHED_BECAUSE + refused, frame)
    assert outcome("name 'x' is not defined", "processes") == (
        "CRASHED", CRASHED_BECAUSE + "name 'x' is not defined", frame)
