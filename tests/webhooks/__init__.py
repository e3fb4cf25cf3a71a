"""Unit tests of webhook parsing, authentication and handler decisions."""
