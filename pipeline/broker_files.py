"""The embedded broker: kombu's folder transport, with every file appearing whole or not at all."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

# Celery's `broker_transport` setting for the embedded broker; its URL stays `filesystem://`.
TRANSPORT = "pipeline.broker_files:Transport"


class Channel(filesystem.Channel):
    """kombu's folder channel, writing each new file under a hidden name and then renaming it.

    kombu creates a message's file and then writes it. A worker polling the folder in between
    took the empty file for a message and stopped (`Unrecoverable error: JSONDecodeError`), and
    `gradehook run` stopped with it; the message was lost. An exchange's table, created the same
    way, could be read empty by a process sending a message. A name starting with a dot is no
    queue's, so no worker takes a file before its rename.
    """

    def _put(self, queue, payload, **kwargs):
        """Put a message on a queue: its file appears, whole, under its final name."""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        data = str_to_bytes(dumps(payload))
        try:
            _write_whole(Path(self.data_folder_out) / name, data, replace=True)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {name!r} to directory") from exc

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        """Bind a queue to an exchange, first creating the exchange's table, whole, if new."""
        table = self._exchange_file(exchange)
        if not table.exists():
            self.control_folder.mkdir(exist_ok=True)
            try:
                _write_whole(table, str_to_bytes(dumps([])), replace=False)
            except FileExistsError:
                pass  # another process created it first: bind to theirs
            except OSError as exc:
                raise ChannelError(f"Cannot open {table}") from exc
        super()._queue_bind(exchange, routing_key, pattern, queue)


class Transport(filesystem.Transport):
    """kombu's folder transport with gradehook's Channel."""

    Channel = Channel


def _write_whole(path: Path, data: bytes, *, replace: bool) -> None:
    """Write a file beside its final name, then move it there; `replace=False` keeps a file
    already there (FileExistsError)."""
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        partial.write_bytes(data)
        if replace:
            os.rename(partial, path)
        else:
            os.link(partial, path)
    finally:
        partial.unlink(missing_ok=True)
