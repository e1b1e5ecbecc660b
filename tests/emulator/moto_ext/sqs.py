"""SQS: the emulator's clock for delays and visibility timeouts, and a view
of every queue.

moto honours DelaySeconds on the wall clock, so a test of a 15-minute
delay would wait 15 minutes. Two ways on: releasing every delayed message at
once, or moving the emulator's clock (common.CLOCK) to the next deadline,
which keeps the order and the spacing of the timers. moto's queues need no
subclass for this: moto's SQS reads its time through the two functions
swapped in below, and the control API works on the messages directly.
"""

from collections.abc import Iterator
from typing import Any

import moto.sqs.models
from moto.sqs.models import Queue, sqs_backends

from .common import CLOCK


_wall_unix_time = moto.sqs.models.unix_time


def unix_time(dt: Any = None) -> float:
    return CLOCK.now() if dt is None else _wall_unix_time(dt)


def unix_time_millis(dt: Any = None) -> float:
    return 1000.0 * unix_time(dt)


def install() -> None:
    # moto.sqs.models imported these by name: every SQS deadline (DelaySeconds,
    # visibility timeouts, retention, long polls) and timestamp reads the
    # emulator's clock.
    moto.sqs.models.unix_time = unix_time
    moto.sqs.models.unix_time_millis = unix_time_millis


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


def next_delayed_in(messages: list[Any]) -> float | None:
    """Seconds on the emulator's clock until the first delayed message turns visible."""
    deadlines = [m.delayed_until for m in messages if m.delayed]
    return max(0.0, min(deadlines) / 1000.0 - CLOCK.now()) if deadlines else None


def queue_row(account_id: str, queue: Queue, base_url: str) -> dict[str, Any]:
    messages = list(queue._messages)
    return {
        "name": queue.name,
        "url": f"{base_url}/{account_id}/{queue.name}",
        "visible": sum(1 for m in messages if m.visible and not m.delayed),
        "delayed": sum(1 for m in messages if m.delayed),
        "in_flight": sum(1 for m in messages if not m.visible),
        "max_receive_count_seen": max((m.approximate_receive_count for m in messages), default=0),
        "next_delayed_in": next_delayed_in(messages),
    }


def queue_rows(base_url: str) -> list[dict[str, Any]]:
    """Every queue, by name, with its message counts (moto's queue URL shape)."""
    rows = [queue_row(account_id, queue, base_url.rstrip("/")) for account_id, queue in queues()]
    return sorted(rows, key=lambda row: (row["name"], row["url"]))
