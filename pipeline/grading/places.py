"""The lines of field problems: where each problem's field lies in its file's YAML text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pipeline.grading.errors import FieldProblem
from pipeline.grading.fields import FieldPath, OtherKey

# As the files were read (pipeline.grading.spec.read_yaml): libyaml's parser when PyYAML was
# built with it, PyYAML's own for a text libyaml refuses.
COMPOSERS = tuple(dict.fromkeys((getattr(yaml, "CSafeLoader", yaml.SafeLoader), yaml.SafeLoader)))


def with_lines(problems: Sequence[FieldProblem], text: str | None) -> list[FieldProblem]:
    """Give each problem the line of its field in text: a key's line for a field, an item's
    for a list item, the enclosing mapping's for a missing field; none where it is not found.

    Only a file with problems is composed again, so reading a valid file costs nothing more.
    """
    if text is None or not any(problem.steps for problem in problems):
        return list(problems)
    root = _compose(text)
    if root is None:
        return list(problems)
    entries = _Entries()
    return [replace(problem, line=_line(root, problem.steps, entries)) if problem.steps
            else problem for problem in problems]


def _compose(text: str) -> Node | None:
    for loader in COMPOSERS:
        try:
            return yaml.compose(text, Loader=loader)
        except (yaml.YAMLError, ValueError, RecursionError):
            continue
    return None


def _line(root: Node, steps: FieldPath, entries: _Entries) -> int | None:
    """Return the line (from 1) the last of steps leads to, or None where they lead nowhere."""
    node = place = root
    for index, step in enumerate(steps):
        if isinstance(node, SequenceNode) and isinstance(step, int):
            if not 0 <= step < len(node.value):
                return None
            node = place = node.value[step]
        elif isinstance(node, MappingNode) and not isinstance(step, int):
            entry = entries.entry(node, step.value if isinstance(step, OtherKey) else step)
            if entry is None:
                return node.start_mark.line + 1 if index == len(steps) - 1 else None
            place, node = entry
        else:
            return None
    return place.start_mark.line + 1


class _Entries:
    """Find a mapping's entries as SafeLoader reads them, with its own constructor."""

    def __init__(self) -> None:
        self.loader = yaml.SafeLoader("")
        # Each mapping's entries by key (its type beside it: 1, 1.0 and true are apart), read
        # once: a file with thousands of problems would read a large mapping thousands of times.
        self.by_key: dict[int, dict[tuple[type, Any], tuple[Node, Node]]] = {}

    def entry(self, mapping: MappingNode, key: Any) -> tuple[Node, Node] | None:
        """Return the key and value nodes that give the mapping's key its value: the last of
        its entries once the mappings it merges in (`<<: *base`) are in it, as SafeLoader
        merges them."""
        if id(mapping) not in self.by_key:
            self.by_key[id(mapping)] = self._read(mapping)
        return self.by_key[id(mapping)].get((type(key), key))

    def _read(self, mapping: MappingNode) -> dict[tuple[type, Any], tuple[Node, Node]]:
        try:
            self.loader.flatten_mapping(mapping)
        except (yaml.YAMLError, RecursionError):
            return {}
        entries = {}
        for key_node, value_node in mapping.value:
            if isinstance(key_node, ScalarNode):
                try:
                    key = self.loader.construct_object(key_node)
                except (yaml.YAMLError, ValueError):
                    continue
                entries[(type(key), key)] = (key_node, value_node)
        return entries
