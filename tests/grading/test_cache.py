"""ReferenceCache: reference runs reused across gradings and computed once across processes."""

from __future__ import annotations

import ast
import multiprocessing
from pathlib import Path

import pytest

from pipeline.grading import EngineError, GradeOptions, ReferenceCache, grade, grader
from pipeline.sandbox import values as value_format
from tests.grading.builders import make_assignment

TEST_YAML = """
properties:
  tests:
    - name: values
      entryPoint: ex.py
      tests:
        - name: x
"""


def test_a_warm_cache_skips_the_reference_run(tmp_path: Path):
    student, reference = make_assignment(tmp_path, TEST_YAML, {"ex.py": "x = 1\n"},
                                         {"ex.py": "x = 1\n"})
    cache = ReferenceCache(tmp_path / "cache")
    options = GradeOptions(reference_version="commit-1")
    assert grade(student, reference, reference_cache=cache, options=options).result == "PASSED"
    (reference / "ex.py").write_text("x = 2\n")
    warm = grade(student, reference, reference_cache=cache, options=options)
    assert warm.result == "PASSED"
    assert (cache.misses, cache.hits) == (1, 1)
    changed = grade(student, reference, reference_cache=cache,
                    options=GradeOptions(reference_version="commit-2"))
    assert changed.result == "FAILED"
    assert cache.misses == 2


def test_a_reference_that_ran_out_of_time_runs_again_next_time(tmp_path: Path):
    slow_then_quick = "import pathlib, time\n" \
        "if not pathlib.Path(__file__).with_name('quick').exists():\n    time.sleep(30)\n" \
        "x = 1\n"
    student, reference = make_assignment(tmp_path, TEST_YAML.replace(
        "entryPoint: ex.py", "entryPoint: ex.py\n      timeout: 0.5"),
        {"ex.py": slow_then_quick}, {"ex.py": "x = 1\n"})
    cache = ReferenceCache(tmp_path / "cache")
    options = GradeOptions(reference_version="commit-1")
    # Ours to retry: the run is tried again (pipeline.tasks.retry), not scored nor cached.
    with pytest.raises(EngineError, match="the reference ran out of time, which a busy host "
                                          "may cause: the reference solution gives no expected "
                                          "value for `x` in collection `values`: its run ended "
                                          "TIMEDOUT: Maximum execution time of 0.5 seconds"):
        grade(student, reference, reference_cache=cache, options=options)
    (reference / "quick").write_text("")  # the same commit, on a host no longer busy
    assert grade(student, reference, reference_cache=cache, options=options).result == "PASSED"
    assert (cache.misses, cache.hits) == (2, 0)
    assert grade(student, reference, reference_cache=cache, options=options).result == "PASSED"
    assert (cache.misses, cache.hits) == (2, 1)


def test_without_a_version_the_reference_content_keys_the_cache(tmp_path: Path):
    student, reference = make_assignment(tmp_path, TEST_YAML, {"ex.py": "x = 1\n"},
                                         {"ex.py": "x = 1\n"})
    cache = ReferenceCache(tmp_path / "cache")
    assert grade(student, reference, reference_cache=cache).result == "PASSED"
    assert grade(student, reference, reference_cache=cache).result == "PASSED"
    (reference / "ex.py").write_text("x = 2\n")
    assert grade(student, reference, reference_cache=cache).result == "FAILED"
    assert (cache.misses, cache.hits) == (2, 1)


def test_a_changed_spec_is_a_new_key(tmp_path: Path):
    student, reference = make_assignment(tmp_path, TEST_YAML, {"ex.py": "x = 1\ny = 2\n"},
                                         {"ex.py": "x = 1\ny = 3\n"})
    cache = ReferenceCache(tmp_path / "cache")
    options = GradeOptions(reference_version="commit-1")
    assert grade(student, reference, reference_cache=cache, options=options).result == "PASSED"
    (reference / "test.yaml").write_text(TEST_YAML + "        - name: y\n")
    assert grade(student, reference, reference_cache=cache, options=options).result == "FAILED"


def test_another_value_encoder_is_a_new_key(tmp_path: Path, monkeypatch):
    # Entries the encoder wrote before it carried Counters held them as untransferable: kept,
    # every student failed "cannot be transferred" after the encoder learnt them.
    code = {"ex.py": "from collections import Counter\nx = Counter('aab')\n"}
    student, reference = make_assignment(tmp_path, TEST_YAML, code, code)
    cache = ReferenceCache(tmp_path / "cache")
    options = GradeOptions(reference_version="commit-1")
    assert grade(student, reference, reference_cache=cache, options=options).result == "PASSED"
    changed = tmp_path / "values.py"
    changed.write_bytes(Path(value_format.__file__).read_bytes() + b"\n# changed\n")
    monkeypatch.setattr(value_format, "__file__", str(changed))
    assert grade(student, reference, reference_cache=cache, options=options).result == "PASSED"
    assert (cache.misses, cache.hits) == (2, 0)


def test_every_module_the_sandboxed_runners_import_keys_the_cache():
    # A module of the runners left out of the key would keep reference runs computed by its
    # old code after it changed.
    folder = Path(grader.__file__).parent
    imported = set()
    for name in grader.RUNNER_FILES:
        for node in ast.walk(ast.parse((folder / name).read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    siblings = {name + ".py" for name in imported if (folder / f"{name}.py").is_file()}
    assert siblings and siblings <= set(grader.RUNNER_FILES)


def _grade_once(paths: tuple[str, str, str]) -> tuple[str, int, int]:
    student, reference, cache_dir = paths
    cache = ReferenceCache(cache_dir)
    report = grade(student, reference, reference_cache=cache,
                   options=GradeOptions(reference_version="same"))
    return report.result, cache.misses, cache.hits


def test_concurrent_processes_compute_a_reference_once(tmp_path: Path):
    slow_reference = {"ex.py": "import time\ntime.sleep(0.5)\nx = 1\n"}
    student, reference = make_assignment(tmp_path, TEST_YAML, slow_reference,
                                         {"ex.py": "x = 1\n"})
    paths = (str(student), str(reference), str(tmp_path / "cache"))
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.map(_grade_once, [paths] * 3)
    assert [result for result, _, _ in results] == ["PASSED"] * 3
    assert sum(misses for _, misses, _ in results) == 1
    assert sum(hits for _, _, hits in results) == 2


def test_entries_are_written_atomically_and_bad_entries_recomputed(tmp_path: Path):
    cache = ReferenceCache(tmp_path)
    key = cache.key("a", "b")
    cache.put(key, {"n": 1})
    assert cache.get(key) == {"n": 1}
    entry = tmp_path / key[:2] / f"{key}.json"
    assert sorted(p.name for p in entry.parent.iterdir()) == [f"{key}.json"]
    entry.write_text("{not json")
    assert cache.get_or_compute(key, lambda: {"n": 2}) == {"n": 2}
    assert cache.get(key) == {"n": 2}
    assert cache.get_or_compute(key, lambda: {"n": 3}) == {"n": 2}
