"""Test infrastructure: real services, git repositories and gradehook processes for tests."""
