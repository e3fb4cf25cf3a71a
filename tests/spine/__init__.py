"""Tests of the service spine: configuration, ledger, Celery wiring, CLI, quick start."""
