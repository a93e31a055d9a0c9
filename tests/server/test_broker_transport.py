"""The embedded broker (eldric_cloud/broker_transport.py) under a reader that polls while a
writer writes, as the embedded worker does while the gateway and beat publish."""

from __future__ import annotations

import threading

import pytest
from kombu import Connection

from eldric_cloud.broker_transport import Transport

MESSAGES = 3000


def _connection(folder) -> Connection:
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "control_folder": str(folder / "c")}
    return Connection(transport=Transport, transport_options=options)


def test_a_polling_reader_gets_every_message_whole_while_another_process_writes(tmp_path):
    received: list = []
    failures: list[BaseException] = []
    writing_done = threading.Event()
    give_up = threading.Event()

    def read() -> None:
        with _connection(tmp_path) as connection:
            queue = connection.SimpleQueue("tasks")
            try:
                while len(received) < MESSAGES and not give_up.is_set():
                    try:
                        message = queue.get(block=False)
                    except queue.Empty:
                        if writing_done.is_set() and not any(tmp_path.glob("*.msg")):
                            return
                        continue
                    received.append(message.payload)
                    message.ack()
            except BaseException as exc:  # the test reports what it died of
                failures.append(exc)

    with _connection(tmp_path) as connection:
        queue = connection.SimpleQueue("tasks")
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        for number in range(MESSAGES):
            queue.put({"n": number, "body": "x" * 2000})
    writing_done.set()
    reader.join(timeout=60)
    give_up.set()

    assert not failures, f"the reader died: {failures[0]!r}"
    assert sorted(item["n"] for item in received) == list(range(MESSAGES))
    assert all(item["body"] == "x" * 2000 for item in received)


def test_a_message_that_is_not_json_is_set_aside_and_the_next_one_delivered(tmp_path, caplog):
    with _connection(tmp_path) as connection:
        # Its own queue name: kombu keeps exchange bindings in a process-wide state.
        queue = connection.SimpleQueue("dropped")
        (tmp_path / "0_dropped-in.dropped.msg").write_bytes(b"\x00 not json")
        queue.put({"n": 1})

        message = queue.get(timeout=5)

        assert message.payload == {"n": 1}
        assert (tmp_path / "rejected" / "0_dropped-in.dropped.msg").read_bytes() == b"\x00 not json"
        assert "not JSON" in caplog.text
        with pytest.raises(queue.Empty):
            queue.get(block=False)


def test_queues_bound_at_once_by_several_processes_are_all_recorded(tmp_path):
    # As the gateway's publisher and the worker's consumer declare theirs at start-up.
    exchanges = [f"exchange-{number}" for number in range(40)]
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def bind(queue: str) -> None:
        with _connection(tmp_path) as connection:
            channel = connection.default_channel
            barrier.wait()
            try:
                for exchange in exchanges:
                    channel._queue_bind(exchange, queue, "", queue)
            except BaseException as exc:  # the test reports what it died of
                failures.append(exc)

    threads = [threading.Thread(target=bind, args=(f"queue-{number}",)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not failures, f"a binder died: {failures[0]!r}"
    with _connection(tmp_path) as connection:
        for exchange in exchanges:
            bound = {entry.queue for entry in connection.default_channel.get_table(exchange)}
            assert bound == {f"queue-{number}" for number in range(4)}, exchange
