"""The Celery application: broker, result backend, queues, routes, priorities and time limits."""

from __future__ import annotations

import math

from celery import Celery
from kombu import Queue

from pipeline.broker_files import TRANSPORT as EMBEDDED_TRANSPORT
from pipeline.config import Settings, WorkerSettings
from pipeline.tasks.retry import all_backoffs_seconds, longest_backoff_seconds

STUDENT_TESTING = "student_testing"
SUBMISSION_PROCESSING = "submission_processing"
REGRADE = "regrade"
RECONCILE = "reconcile"
REPORT = "report_runs"
REFRESH_ROSTERS = "refresh_rosters"
# Workers drain queues in this order. `notify` carries only quick GitLab updates (a queued
# run's pending status), so a student sees the pending pipeline even behind a deadline rush.
QUEUES = ("notify", "high_priority", "default", "low_priority")
ROUTES = {
    STUDENT_TESTING: {"queue": "high_priority", "priority": 8},
    SUBMISSION_PROCESSING: {"queue": "default", "priority": 6},
    REGRADE: {"queue": "low_priority", "priority": 3},
    RECONCILE: {"queue": "low_priority", "priority": 3},
    REPORT: {"queue": "notify", "priority": 9},
    REFRESH_ROSTERS: {"queue": "low_priority", "priority": 3},
}
TASK_MODULES = ("pipeline.tasks.student_testing", "pipeline.tasks.maintenance",
                "pipeline.tasks.reporting", "pipeline.tasks.regrade",
                "pipeline.tasks.submission_processing", "pipeline.tasks.rosters")
# Attempts to store a task state while the database is away. Celery's database backend gives up
# after 3 (some 50 ms), failing a task at a database restart; with waits doubling up to Celery's
# cap of 10 s, 20 ride out about a minute.
RESULT_BACKEND_RETRIES = 20
# Seconds a message may wait in a worker before its task starts, beyond a retry's countdown.
DELIVERY_SLACK_SECONDS = 15
# A run still running this long after the broker would have handed its message out again (the
# visibility timeout: past the hard time limit) was neither finished nor redelivered.
STALL_MARGIN_SECONDS = 300


def celery_config(settings: Settings) -> dict:
    """Return Celery's configuration for these settings."""
    w = settings.worker
    transport_options: dict = {"visibility_timeout": visibility_timeout_seconds(w)}
    if settings.embedded:
        folder = str(settings.broker_folder)
        transport_options.update({"data_folder_in": folder, "data_folder_out": folder,
                                  "control_folder": str(settings.broker_folder / "control"),
                                  "store_processed": False,
                                  # The folder is polled; answer control pings and new work fast.
                                  "polling_interval": 0.1})
    else:
        # Redis serves lower priority numbers first across all queues, which would put a
        # priority-3 regrade before a priority-8 student test. Strict queue order instead: a
        # worker drains high_priority, then default, then low_priority; the priority travels in
        # each message for brokers that honour it.
        transport_options.update({"socket_connect_timeout": 2, "socket_timeout": 10,
                                  "queue_order_strategy": "priority", "priority_steps": [0],
                                  # Look for messages of lost workers every restore interval
                                  # (10 s), not every tenth one.
                                  "unacked_restore_throttle": 1})
    return {
        "broker_url": settings.broker_url,
        **({"broker_transport": EMBEDDED_TRANSPORT} if settings.embedded else {}),
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 5,
        "result_backend": "db+" + settings.database_url,
        "result_extended": True,
        "result_backend_always_retry": True,
        "result_backend_max_retries": RESULT_BACKEND_RETRIES,
        "database_engine_options": {"pool_pre_ping": True},
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_queues": tuple(Queue(name, queue_arguments={"x-max-priority": 10})
                             for name in QUEUES),
        "task_default_queue": "default",
        "task_routes": ROUTES,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_track_started": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": w.processes,
        "worker_send_task_events": True,
        "task_annotations": {
            STUDENT_TESTING: {"soft_time_limit": w.student_testing_soft_time_limit,
                              "time_limit": w.student_testing_time_limit},
            SUBMISSION_PROCESSING: {"soft_time_limit": w.submission_processing_soft_time_limit,
                                    "time_limit": w.submission_processing_time_limit},
        },
        "beat_schedule": {
            "reconcile": {"task": RECONCILE, "schedule": w.reconcile_interval_seconds},
            "refresh_rosters": {"task": REFRESH_ROSTERS, "schedule": w.roster_interval_seconds},
        },
        "timezone": "UTC",
        "enable_utc": True,
    }


def visibility_timeout_seconds(worker: WorkerSettings) -> int:
    """Return how long a delivered, unacknowledged message waits before Redis hands it out again.

    It outlasts the longest a task can hold its message (the longest retry countdown, a little
    slack, then the longest hard time limit), or a live task would be delivered twice; beyond
    it, the message of a worker that died is delivered again.
    """
    longest_limit = max(worker.student_testing_time_limit, worker.submission_processing_time_limit)
    return math.ceil(retry_patience_seconds(worker) + longest_limit)


def stall_patience_seconds(worker: WorkerSettings) -> float:
    """Return how long after a run's task last started, or last sent its next try, the run is
    taken for stalled: the broker has handed the message of a worker that died out again by
    then (the visibility timeout), and a margin has passed."""
    return visibility_timeout_seconds(worker) + STALL_MARGIN_SECONDS


def retry_patience_seconds(worker: WorkerSettings) -> float:
    """Return how long after a retry's message is sent its task starts at the latest: the
    longest wait before a retry, and a little slack. Past it, the worker holding the message
    has died (the broker would hand it out again only after the visibility timeout), or has
    had no process free all that time."""
    return longest_backoff_seconds(worker.max_attempts, worker.database_wait_seconds) \
        + DELIVERY_SLACK_SECONDS


def report_patience_seconds(worker: WorkerSettings) -> float:
    """Return how long after a run's end its report_runs task has given up at the latest: its
    attempts' waits, and a little slack for each message to start."""
    return all_backoffs_seconds(worker.max_attempts) \
        + DELIVERY_SLACK_SECONDS * worker.max_attempts


def create_celery(settings: Settings) -> Celery:
    """Build the Celery app for these settings, with gradehook's tasks registered."""
    if settings.embedded:
        for folder in (settings.broker_folder, settings.broker_folder / "control"):
            folder.mkdir(parents=True, exist_ok=True)
    app = Celery("gradehook", include=list(TASK_MODULES), set_as_current=True)
    app.conf.update(celery_config(settings))
    # Not in app.conf: a worker hands its whole configuration to `celery inspect conf` and to
    # Flower's worker page, censoring only keys whose names look secret; the settings hold the
    # GitLab token, the webhook secrets and the database passwords.
    app.gradehook_settings = settings
    return app
