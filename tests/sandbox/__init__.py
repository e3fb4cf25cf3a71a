"""Tests of the bubblewrap sandbox and the value transfer format."""
