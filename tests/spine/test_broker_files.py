"""The embedded broker's folder: no process reads a message or an exchange's table half written."""

from __future__ import annotations

from queue import Empty

from kombu.transport import filesystem

from pipeline.broker_files import Transport
from pipeline.celery_app import STUDENT_TESTING, create_celery
from pipeline.config import load_settings


def embedded_celery(tmp_path):
    """Return the Celery app of the embedded default, its broker folder under tmp_path."""
    (tmp_path / "config.toml").write_text(f'data_dir = "{tmp_path / "data"}"\n')
    return create_celery(load_settings(tmp_path / "config.toml", environ={}))


class WhileSerialised:
    """A part of a message that runs a check while the message is being serialised."""

    def __init__(self, check) -> None:
        self.check = check

    def __json__(self) -> str:
        self.check()
        return "part"


def test_a_message_is_not_taken_before_it_is_written_whole(tmp_path):
    """Before, the worker polling the folder could take a message's file between its creation
    and its write, and stopped at the empty file (JSONDecodeError)."""
    with embedded_celery(tmp_path).connection_for_write() as sender, \
            sender.clone() as worker:
        taken_meanwhile = []

        def poll():
            try:
                taken_meanwhile.append(worker.default_channel._get("high_priority"))
            except Empty:
                pass

        sender.default_channel._put("high_priority", {"body": WhileSerialised(poll)})
        assert taken_meanwhile == []
        assert worker.default_channel._get("high_priority") == {"body": "part"}
        assert list((tmp_path / "data" / "broker").glob(".*")) == []


def test_an_exchange_table_is_not_read_before_it_is_written_whole(tmp_path, monkeypatch):
    """Before, a new exchange's table was created empty and then written: a process sending a
    message in between failed to read it."""
    with embedded_celery(tmp_path).connection_for_write() as binder, binder.clone() as sender:
        read_meanwhile = []
        kombu_lock = filesystem.lock

        def lock(file, flags):
            if flags == filesystem.LOCK_EX and file.name.endswith("grading.exchange"):
                read_meanwhile.append(sender.default_channel.get_table("grading"))
            kombu_lock(file, flags)

        monkeypatch.setattr(filesystem, "lock", lock)
        binder.default_channel._queue_bind("grading", "key", "", "a_queue")
        assert read_meanwhile == [[]]
        assert sender.default_channel.get_table("grading") == [("key", "", "a_queue")]


def test_the_embedded_default_sends_and_takes_tasks_through_it(tmp_path):
    app = embedded_celery(tmp_path)
    app.send_task(STUDENT_TESTING, args=["some-run"], task_id="some-task")
    with app.connection_for_read() as worker:
        assert isinstance(worker.transport, Transport)
        message = worker.default_channel.basic_get("high_priority")
        assert (message.headers["task"], message.headers["id"]) == (STUDENT_TESTING, "some-task")
        assert worker.default_channel.basic_get("high_priority") is None
