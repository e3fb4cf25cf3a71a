"""Problems of test.yaml and meta.yaml fields name the line of the field in the file."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from pipeline.grading import SpecError, load_meta, load_test_suite

QUALIFICATIONS = "verifyEqual, matches, contains, startsWith, endsWith, count, regexp"


def problems(tmp_path: Path, text: str, file_name: str = "test.yaml") -> list[str]:
    path = tmp_path / file_name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        (load_test_suite if file_name == "test.yaml" else load_meta)(path)
    return str(caught.value).splitlines()


def many_tests(bad: tuple[int, int]) -> str:
    """Four collections of twenty tests each, two lines a test; the bad one is mistyped."""
    lines = ["properties:", "  tests:"]
    for collection in range(4):
        lines += [f"    - name: c{collection}", "      tests:"]
        for test in range(20):
            field = "qualification: equal" if (collection, test) == bad else f"value: {test}"
            lines += [f"        - name: t{test}", f"          {field}"]
    return "\n".join(lines) + "\n"


def test_a_field_deep_in_nested_lists_names_its_line(tmp_path: Path):
    # Collection 3 starts on line 3 + 3 * 42 = 129, its test 17 on 131 + 2 * 17 = 165.
    assert problems(tmp_path, many_tests(bad=(3, 17))) == [
        f"test.yaml line 166: properties.tests[3].tests[17].qualification: must be one of "
        f"{QUALIFICATIONS}, got 'equal'"]


def test_an_unknown_field_names_the_line_of_its_key(tmp_path: Path):
    assert problems(tmp_path, """
        name: demo
        properties:
          tests:
            - name: c
              tests:
                - name: x
                  value: 1
                - name: y
                  value:
                    - 1
                    - 2
                  valu: 3
    """) == ["test.yaml line 12: properties.tests[0].tests[1].valu: unknown field; did you mean "
             "value?"]


def test_an_unknown_field_like_a_field_of_its_place_names_that_field(tmp_path: Path):
    assert problems(tmp_path, f"""
        properties:
          qualifcation: verifyEqual
          tests:
            - name: c
              entrypoint: ex.py
              setupCode: x = 1
              allowedOccurrenceRange: [1, 2]
              tests:
                - name: x
                  type: stdout
                  eval: x + 1
                  {"q" * 41}: 1
    """) == ["test.yaml line 2: properties.qualifcation: unknown field; did you mean "
             "qualification?",
             "test.yaml line 5: properties.tests[0].entrypoint: unknown field; did you mean "
             "entryPoint?",
             "test.yaml line 6: properties.tests[0].setupCode: unknown field; did you mean "
             "setUpCode?",
             "test.yaml line 7: properties.tests[0].allowedOccurrenceRange: unknown field; did "
             "you mean allowedOccuranceRange?",
             # A collection's field in a test is sent to its place; a key like no field is
             # named alone.
             "test.yaml line 10: properties.tests[0].tests[0].type: is not a field here: it "
             "belongs on the collection, beside its `name` and `tests`, not on one of its tests",
             "test.yaml line 11: properties.tests[0].tests[0].eval: unknown field",
             f"test.yaml line 12: properties.tests[0].tests[0].{'q' * 41}: unknown field"]


def test_a_field_a_level_off_names_the_level_it_belongs_on(tmp_path: Path):
    assert problems(tmp_path, """
        properties:
          tests:
            - name: c
              evalString: x + 1
              tests:
                - name: x
                  timeout: 3
                  entryPoint: ex.py
    """) == ["test.yaml line 4: properties.tests[0].evalString: is not a field here: it belongs "
             "on a test, an item of the collection's `tests`",
             "test.yaml line 7: properties.tests[0].tests[0].timeout: is not a field here: it "
             "belongs on the collection, beside its `name` and `tests`, not on one of its tests",
             "test.yaml line 8: properties.tests[0].tests[0].entryPoint: is not a field here: "
             "it belongs on the collection, beside its `name` and `tests`, not on one of its "
             "tests"]


def test_fields_the_engine_would_ignore_are_refused_at_their_line(tmp_path: Path):
    assert problems(tmp_path, """
        properties:
          tests:
            - name: style
              type: linting
              file: ex.py
              tests:
                - name: flake8
                  pattern: E501
            - name: values
              tests:
                - name: x
                  pattern: "5"
                - name: y
                  value: 3
                  evalString: x + 1
                - name: z
                  qualification: contains
                  pattern: "5"
            - name: style
              type: linting
              file: other.py
              tests:
                - name: flake8
    """) == ["test.yaml line 12: properties.tests[1].tests[0].pattern: is used by the "
             "qualifications matches, contains, startsWith, endsWith, count and regexp, but this "
             "test's qualification is verifyEqual, which compares with the reference's value and "
             "ignores the pattern: set the qualification the pattern is for, or remove the "
             "pattern",
             "test.yaml line 15: properties.tests[1].tests[1].evalString: is ignored when the "
             "test also has a `value`, which is the expected value then: keep only one of them",
             "test.yaml line 19: properties.tests[2].name: `style` is also the name of "
             "collection 1: give each collection its own name, as hiddenTests and the linting "
             "output files tell collections apart by it"]


@pytest.mark.parametrize("file_name", ["test.yaml", "meta.yaml"])
def test_a_key_given_twice_is_refused_at_its_second_place(tmp_path: Path, file_name: str):
    """YAML keeps the last of two equal keys: a second `value` would silently be expected."""
    assert problems(tmp_path, """
        properties:
          tests:
            - name: c
              tests:
                - name: average([2, 4])
                  value: 3.0
                  value: 4.0
    """, file_name) == [
        f"{file_name} line 7, column 11: `value` is given twice in this mapping (first at line "
        "6): YAML keeps only the last one and ignores the other, so give it once"]


def test_a_key_merged_in_may_be_given_again_to_override_it(tmp_path: Path):
    path = tmp_path / "test.yaml"
    path.write_text(textwrap.dedent("""
        properties:
          tests:
            - &first
              name: c
              tests: [{name: x}]
            - <<: *first
              name: d
    """), encoding="utf-8")
    assert [c.name for c in load_test_suite(path).collections] == ["c", "d"]


@pytest.mark.parametrize("file_name", ["test.yaml", "meta.yaml"])
@pytest.mark.parametrize("content, place, byte", [
    (b"properties:\n  tests:\n    - name: caf\xe9\n", "line 3, column 16", "0xe9"),
    # Windows line breaks are one break; columns count characters, not bytes.
    (b"properties:\r\n  tests:\r\n    - name: \xc3\xa4 caf\xe9\r\n", "line 3, column 18", "0xe9"),
    (b"\xff\xfep\x00r\x00", "line 1, column 1", "0xff"),  # UTF-16, some editors' "Unicode"
    (b"#" * 9000 + b"\nk: \xe9\n", "line 2, column 4", "0xe9"),
])
def test_a_file_that_is_not_utf8_names_the_place_of_its_first_such_byte(
        tmp_path: Path, content: bytes, place: str, byte: str, file_name: str):
    path = tmp_path / file_name
    path.write_bytes(content)
    with pytest.raises(SpecError) as caught:
        (load_test_suite if file_name == "test.yaml" else load_meta)(path)
    assert str(caught.value) == (
        f"{file_name} {place}: the file is not UTF-8 text: byte {byte} here is not valid UTF-8; "
        "save the file in the UTF-8 encoding")


def test_a_missing_field_names_the_line_of_its_mapping(tmp_path: Path):
    assert problems(tmp_path, """
        properties:
          tests:
            - name: c
              tests:
                - name: x
            - entryPoint: ex.py
              tests:
                - name: y
                - value: 3
                  typeCheck: false
            - name: d
    """) == ["test.yaml line 6: properties.tests[1].name: is required",
             "test.yaml line 9: properties.tests[1].tests[1].name: is required",
             "test.yaml line 11: properties.tests[2].tests: is required"]


def test_a_mistyped_value_names_the_line_of_its_key_or_list_item(tmp_path: Path):
    assert problems(tmp_path, """
        properties:
          timeout: 10
          tests:
            - name: c
              timeout: soon
              inputAnswers:
                - 1
                - [2]
              tests: {name: x}
    """) == ["test.yaml line 8: properties.tests[0].inputAnswers[1]: must be a string, got [2]",
             "test.yaml line 5: properties.tests[0].timeout: must be a number, got 'soon'",
             "test.yaml line 9: properties.tests[0].tests: must be a list, got {'name': 'x'}"]


def test_keys_with_dots_or_brackets_or_of_other_types_name_their_own_line(tmp_path: Path):
    """The path's text is the same for `a.b:` and `b:` inside `a:`: the line is still exact."""
    assert problems(tmp_path, """
        properties:
          tests:
            - name: c
              tests:
                - name: x
                  a:
                    b: 1
                  "a.b": 2
                  "tests[0]": 3
                  yes: 4
                  "True": 5
              tests.name: 6
    """) == ["test.yaml line 12: properties.tests[0].tests.name: unknown field",
             "test.yaml line 6: properties.tests[0].tests[0].a: unknown field",
             "test.yaml line 8: properties.tests[0].tests[0].a.b: unknown field",
             "test.yaml line 9: properties.tests[0].tests[0].tests[0]: unknown field",
             "test.yaml line 10: properties.tests[0].tests[0].True: unknown field",
             "test.yaml line 11: properties.tests[0].tests[0].True: unknown field"]


def test_a_field_merged_in_from_an_anchor_names_the_anchors_line(tmp_path: Path):
    assert problems(tmp_path, """
        properties:
          tests:
            - name: c
              tests:
                - &strict
                  name: x
                  typeCheck: maybe
                - <<: *strict
                  name: y
                  shapeCheck: no
    """) == [
        "test.yaml line 7: properties.tests[0].tests[0].typeCheck: must be true or false, "
        "got 'maybe'",
        "test.yaml line 7: properties.tests[0].tests[1].typeCheck: must be true or false, "
        "got 'maybe'"]


def test_meta_yaml_fields_name_their_line(tmp_path: Path):
    assert problems(tmp_path, """
        slug: week1
        testDependencies:
          - week0/helper.py
          - /etc/passwd
        properties:
          maxSubmissions: 3
          executionBackend:
            slug: python
            settings:
              memoryLimitMB: 256
              timeout: -1
    """, "meta.yaml") == [
        "meta.yaml line 4: testDependencies[1]: must be a relative path inside the assignment "
        "directory, got '/etc/passwd'",
        "meta.yaml line 11: properties.executionBackend.settings.timeout: must be at least 0, "
        "got -1"]


def test_problems_of_the_whole_file_have_no_line(tmp_path: Path):
    assert problems(tmp_path, "- 1\n") == [
        "test.yaml: (top level): must be a mapping of fields, got [1]"]


def test_a_file_of_many_problems_reads_each_key_once(tmp_path: Path, monkeypatch):
    """Each problem's line is looked up in a mapping read once, not once a problem: a file of
    16,000 unknown fields took 90 s so, where reading it takes 0.3 s."""
    keys = 2000
    reads = []
    construct = yaml.SafeLoader.construct_object
    monkeypatch.setattr(yaml.SafeLoader, "construct_object",
                        lambda loader, node, deep=False: reads.append(node)
                        or construct(loader, node, deep))
    lines = problems(tmp_path, "".join(f"k{i}: 1\n" for i in range(keys)))
    assert len(lines) == keys and lines[-1] == f"test.yaml line {keys}: k{keys - 1}: unknown field"
    assert len(reads) <= 2 * keys
