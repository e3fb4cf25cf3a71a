"""Test helpers shared by several test areas (e.g. the local GitLab API stand-in)."""
