"""The small CodeAbility assignment that integration tests and benchmarks grade."""

from __future__ import annotations

ONE_TEST = """\
type: python
name: Hello
properties:
  tests:
    - type: variable
      name: Greeting
      entryPoint: hello.py
      tests:
        - name: greeting
"""
# The same collection with a second test, `count`, so a solution can pass half of it.
TWO_TESTS = ONE_TEST + "        - name: count\n"
