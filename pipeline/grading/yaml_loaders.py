"""The YAML loaders assignment files are read with: safe ones that refuse a key given twice."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

MERGE_TAG = "tag:yaml.org,2002:merge"
# YAML's loaders keep the last of two equal keys without a word: a test's second `value` would
# silently be the expected one. A key merged in (`<<: *defaults`) and then given is meant to
# override, and stays allowed.
KEY_GIVEN_TWICE = "{key} is given twice in this mapping (first at line {line}): YAML keeps only " \
    "the last one and ignores the other, so give it once"


class _UniqueKeys:
    """A constructor mixin that refuses a mapping giving one key twice, at the second one."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict:
        """Build a mapping as the safe constructor does, after checking its own keys."""
        first_lines: dict[tuple[type, Any], int] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)  # type: ignore[attr-defined]
            try:
                first = first_lines.setdefault((type(key), key), key_node.start_mark.line + 1)
            except TypeError:  # unhashable: the safe constructor says so
                continue
            if first != key_node.start_mark.line + 1:
                raise ConstructorError(None, None, KEY_GIVEN_TWICE.format(
                    key=f"`{key}`" if isinstance(key, str) else repr(key), line=first),
                    key_node.start_mark)
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc]


# libyaml's parser when PyYAML was built with it: ten times faster on a course's test.yaml, and
# it builds the same safe objects. It also takes tabs where YAML allows them and PyYAML's own
# parser does not (`key:<tab>value`). PyYAML's parser reads a file libyaml refuses, for its
# clearer message (it quotes the line and the character at fault).
class FastUniqueKeyLoader(_UniqueKeys, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """libyaml's parser when PyYAML was built with it, refusing a key given twice."""


class UniqueKeyLoader(_UniqueKeys, yaml.SafeLoader):
    """PyYAML's own parser, refusing a key given twice."""
