"""Tests of submission processing."""
