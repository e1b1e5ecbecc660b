"""S3 -> EventBridge as the service delivers it, and EventBridge -> SQS only
where the queue's policy lets the rule send.

moto 5.2.1 sends an S3 event to EventBridge when the bucket's
EventBridgeConfiguration is on, but:

- every event has the same `id` (a constant of moto's), so a consumer that
  deduplicates on it would keep only the first upload;
- `detail.object.sequencer` is one constant too, so two writes of one key look
  like one write; the ETag is under `eTag` where AWS writes `etag`, `reason`
  is `ObjectCreated` where AWS writes the API (`PutObject`, `CopyObject`, ...),
  and `version-id` is `null` on an unversioned bucket, where AWS leaves it out;
- it goes to the rules of every bus; S3 only sends to the account's default bus.

And moto delivers a rule's event to an SQS target whatever the queue policy
says, where EventBridge needs a statement that allows `events.amazonaws.com`
to `sqs:SendMessage` (AWS recommends an `aws:SourceArn` condition naming the
rule); without it the delivery fails and the message never arrives.
"""

import copy
import fnmatch
import itertools
import json
import threading
import time
import uuid
from typing import Any

import moto.events.models
import moto.s3.notifications
from moto.core.utils import unix_time
from moto.events.utils import _BASE_EVENT_MESSAGE

EVENTS_PRINCIPAL = "events.amazonaws.com"
DEFAULT_BUS = "default"
# "Amazon S3 event notifications - EventBridge event message structure": the
# API behind each Object Created event.
REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "PostObject",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
}

_sequencer_lock = threading.Lock()
_last_sequencer = 0
_request_ids = itertools.count(1)


def next_sequencer() -> str:
    """A hex value that grows with every write, as S3's sequencer does for the writes of one key."""
    global _last_sequencer
    with _sequencer_lock:
        _last_sequencer = max(_last_sequencer + 1, time.time_ns())
        return f"{_last_sequencer:016X}"


def object_event(account_id: str, bucket: Any, event_name: str, key: Any) -> dict[str, Any]:
    event = copy.deepcopy(_BASE_EVENT_MESSAGE)
    obj: dict[str, Any] = {
        "key": key.name,
        "size": key.size,
        "etag": key.etag.replace('"', ""),
    }
    if bucket.is_versioned and key.version_id and key.version_id != "null":
        obj["version-id"] = key.version_id
    obj["sequencer"] = next_sequencer()
    event.update(
        {
            "id": str(uuid.uuid4()),
            "detail-type": moto.s3.notifications._detail_type(event_name),
            "source": "aws.s3",
            "account": account_id,
            # moto's SQS target turns epoch seconds into the ISO time EventBridge sends.
            "time": unix_time(),
            "region": bucket.region_name,
            "resources": [bucket.arn],
            "detail": {
                "version": "0",
                "bucket": {"name": bucket.name},
                "object": obj,
                "request-id": f"{next(_request_ids):016X}",
                "requester": account_id,
                "source-ip-address": "127.0.0.1",
                "reason": REASONS.get(event_name, event_name.split(":")[1]),
            },
        }
    )
    return event


def send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
    """Puts the event on the default bus of the bucket's account and Region only."""
    from moto.events.models import events_backends

    event = object_event(account_id, bucket, event_name, key)
    backend = events_backends[account_id][bucket.region_name]
    bus = backend.event_buses.get(DEFAULT_BUS)
    if bus is None:
        return
    for rule in list(bus.rules.values()):
        if rule.state == "ENABLED":
            rule.send_to_targets(event, transform_input=False)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    """The condition operators a queue policy for EventBridge uses; any other one does not hold."""
    for operator, keys in condition.items():
        for key, wanted in keys.items():
            actual = context.get(key.lower())
            if actual is None:
                return False
            patterns = [str(w) for w in _as_list(wanted)]
            if operator in ("ArnEquals", "StringEquals"):
                if actual not in patterns:
                    return False
            elif operator in ("ArnLike", "StringLike"):
                if not any(fnmatch.fnmatchcase(actual, p) for p in patterns):
                    return False
            else:
                return False
    return True


def _statement_allows(statement: dict[str, Any], queue_arn: str, context: dict[str, str]) -> bool:
    principal = statement.get("Principal")
    services = _as_list(principal.get("Service", [])) if isinstance(principal, dict) else []
    if principal != "*" and EVENTS_PRINCIPAL not in services:
        return False
    action_ok = any(fnmatch.fnmatchcase("sqs:sendmessage", str(a).lower()) for a in _as_list(statement.get("Action", [])))
    resource_ok = any(fnmatch.fnmatchcase(queue_arn, str(r)) for r in _as_list(statement.get("Resource", [])))
    return action_ok and resource_ok and _condition_holds(statement.get("Condition", {}), context)


def events_may_send(policy: str | None, queue_arn: str, rule_arn: str, account_id: str) -> bool:
    """Whether the queue policy lets EventBridge deliver this rule's events (an explicit Deny wins)."""
    if not policy:
        return False
    try:
        document = json.loads(policy)
    except ValueError:
        return False
    context = {"aws:sourcearn": rule_arn, "aws:sourceaccount": account_id}
    statements = _as_list(document.get("Statement", []))
    matching = [s for s in statements if isinstance(s, dict) and _statement_allows(s, queue_arn, context)]
    return any(s.get("Effect") == "Allow" for s in matching) and not any(s.get("Effect") == "Deny" for s in matching)


_moto_send_to_sqs_queue = moto.events.models.Rule._send_to_sqs_queue


def send_to_sqs_queue(self: Any, resource_id: str, event: dict[str, Any], group_id: str | None = None) -> None:
    from moto.sqs.models import sqs_backends

    queues = sqs_backends[self.account_id][self.region_name].queues
    queue = queues.get(resource_id)
    # A missing queue or a policy that does not let the rule send fails the
    # delivery: EventBridge counts it in FailedInvocations, nothing arrives.
    if queue is None or not events_may_send(queue.policy, queue.queue_arn, self.arn, self.account_id):
        return
    _moto_send_to_sqs_queue(self, resource_id, event, group_id)


def install() -> None:
    moto.s3.notifications._send_event_bridge_message = send_event_bridge_message
    moto.events.models.Rule._send_to_sqs_queue = send_to_sqs_queue
