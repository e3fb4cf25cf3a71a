"""Tests of the report builders in pipeline.reports."""
