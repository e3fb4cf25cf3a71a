"""Tests of the grading engine: specs, checks, sandboxed runs, reports, cache, modes and CLI."""
