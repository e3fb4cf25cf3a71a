"""Submissions: record a hand-in, wait for its test run, validate, publish it on GitLab."""
