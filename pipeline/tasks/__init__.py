"""Thin Celery tasks that drive plain functions of the pipeline."""
