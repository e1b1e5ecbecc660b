"""SQS: a virtual clock for delayed messages, and a view of every queue.

moto honours DelaySeconds on the wall clock, so a test of a 15-minute
delay would wait 15 minutes; releasing the delayed messages lets it go on
at once. moto's queues need no subclass for this: the control API works on
their messages directly.
"""

from collections.abc import Iterator
from typing import Any

from moto.sqs.models import Queue, sqs_backends


def queues() -> Iterator[tuple[str, Queue]]:
    """(account id, queue) for every queue of every account and region."""
    for account_id, _, backend in sqs_backends.iter_backends():
        for queue in backend.queues.values():
            yield account_id, queue


def release_delayed() -> int:
    """Makes every message still within its DelaySeconds visible now; the number released."""
    released = 0
    for _, queue in queues():
        with queue._messages_lock:
            for message in queue._messages:
                if message.delayed:
                    message.delayed_until = 0.0
                    released += 1
            # Wakes receivers that are long-polling this queue.
            queue._messages_lock.notify_all()
    return released


def queue_row(account_id: str, queue: Queue, base_url: str) -> dict[str, Any]:
    messages = list(queue._messages)
    return {
        "name": queue.name,
        "url": f"{base_url}/{account_id}/{queue.name}",
        "visible": sum(1 for m in messages if m.visible and not m.delayed),
        "delayed": sum(1 for m in messages if m.delayed),
        "in_flight": sum(1 for m in messages if not m.visible),
        "max_receive_count_seen": max((m.approximate_receive_count for m in messages), default=0),
    }


def queue_rows(base_url: str) -> list[dict[str, Any]]:
    """Every queue, by name, with its message counts (moto's queue URL shape)."""
    rows = [queue_row(account_id, queue, base_url.rstrip("/")) for account_id, queue in queues()]
    return sorted(rows, key=lambda row: (row["name"], row["url"]))
