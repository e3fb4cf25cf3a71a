"""Fault-injection tests: lost workers, restarted Redis and PostgreSQL, a failing GitLab API."""
