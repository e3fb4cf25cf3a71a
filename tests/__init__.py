"""gradehook test suite."""
