"""Worker side of gradehook: ledger, configuration, Celery app, repositories, grading, reports."""
