"""The embedded broker: kombu's filesystem transport, made safe for a reader polling while a
writer writes (``CELERY_BROKER_TRANSPORT`` names it when ``REDIS_URL`` is unset).

kombu's own transport creates a message file empty, then writes it. A worker polling the
folder in between takes the empty file and dies on ``JSONDecodeError`` ("Unrecoverable
error"): CI saw it. Here a message is written under a name no reader looks for and renamed
into place, so a reader sees it whole or not at all. A reader claims a file by renaming it
into ``claimed/`` on the same filesystem (kombu moves it to the system temp dir, which may be
another filesystem, where a move is a copy that two readers can both make). A message that
still does not decode (a file an operator dropped in, a disk fault) is set aside in
``rejected/`` with an error in the log, and the worker goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

# Names a reader skips: kombu's readers match ``<stamp>_<uuid>.<queue>.msg`` only.
_PARTIAL_PREFIX = ".partial-"


class Channel(filesystem.Channel):
    def _queue_bind(self, exchange, routing_key, pattern, queue):
        # kombu creates a missing exchange file empty before it locks and fills it: a process
        # reading it then (a publisher routing a message) fails on empty JSON. An empty table
        # linked into place first sends kombu down its locked read-modify-write path instead.
        file = self._exchange_file(exchange)
        if not file.exists():
            self.control_folder.mkdir(parents=True, exist_ok=True)
            partial = file.with_name(f"{_PARTIAL_PREFIX}{uuid.uuid4()}")
            partial.write_text("[]")
            try:
                os.link(partial, file)
            except FileExistsError:
                pass  # another process made it first
            finally:
                _remove_quietly(str(partial))
        super()._queue_bind(exchange, routing_key, pattern, queue)

    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        folder = self.data_folder_out
        partial = os.path.join(folder, _PARTIAL_PREFIX + name)
        try:
            with open(partial, "wb") as file:
                file.write(dumps(payload).encode())
            os.replace(partial, os.path.join(folder, name))
        except OSError as exc:
            _remove_quietly(partial)
            raise ChannelError(f"cannot add a message to {folder!r}: {exc}") from exc

    def _get(self, queue):
        wanted = f"{queue}.msg"
        folder = self.data_folder_in
        claimed = os.path.join(folder, "claimed")
        for name in sorted(os.listdir(folder)):
            if name.partition(".")[2] != wanted:
                continue
            path = os.path.join(claimed, name)
            try:
                os.makedirs(claimed, exist_ok=True)
                os.rename(os.path.join(folder, name), path)
            except FileNotFoundError:
                continue  # another reader took it first
            try:
                with open(path, "rb") as file:
                    payload = file.read()
            except OSError as exc:
                raise ChannelError(f"cannot read the message {path!r}: {exc}") from exc
            try:
                message = loads(payload)
            except ValueError:
                self._reject(folder, path, name)
                continue
            _remove_quietly(path)
            return message
        raise Empty()

    def _reject(self, folder: str, path: str, name: str) -> None:
        rejected = os.path.join(folder, "rejected")
        os.makedirs(rejected, exist_ok=True)
        os.replace(path, os.path.join(rejected, name))
        logger.error("broker: the message %s is not JSON; set aside in %s", name, rejected)


class Transport(filesystem.Transport):
    Channel = Channel


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
