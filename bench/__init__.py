"""Benchmark scripts that measure gradehook on this machine and print tables."""
