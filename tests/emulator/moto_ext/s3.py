"""S3 conditional writes as atomic as the real service's, its 409
ConditionalRequestConflict on demand, and DeleteObjects' limit of 1,000 keys.

moto 5.2.1 checks `If-None-Match: *` and then writes the key as two separate
steps on whatever server thread runs the request, so two concurrent writers
of one new key can both get 200 where S3 lets exactly one win. It also
deletes any number of keys in one DeleteObjects, where S3 answers
MalformedXML above 1,000.
"""

import threading
import uuid
from typing import Any
from xml.sax.saxutils import escape

import xmltodict
from moto.s3.exceptions import MalformedXML
from moto.s3.models import S3Backend, s3_backends
from moto.s3.responses import S3Response

from .common import ArmedFailures, random_hex, swap_backend_class, url_module

# Bucket names are global and any account's backend may write a bucket, so
# one lock covers them all. Every PutObject takes it, so a conditional
# write's check and write never interleave with another write.
WRITE_LOCK = threading.Lock()
# S3: "The request can contain a list of up to 1,000 keys that you want to delete."
MAX_DELETE_KEYS = 1000
# Armed by the control API: the next conditional writes fail with 409.
CONFLICTS = ArmedFailures()
CONFLICT_CODE = "ConditionalRequestConflict"
CONFLICT_MESSAGE = (
    "A conflicting operation occurred. If using PutObject you can retry the request. "
    "If using multipart upload you should initiate another CreateMultipartUpload request "
    "and re-upload each part."
)


def arm_conflicts(count: int, key_prefix: str) -> int:
    return CONFLICTS.arm(count, key_prefix=key_prefix)


def conflict_response(key_name: str) -> tuple[int, dict[str, str], str]:
    """S3's REST error for a conditional write that raced another operation."""
    request_id = random_hex(16).upper()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{CONFLICT_CODE}</Code><Message>{escape(CONFLICT_MESSAGE)}</Message>"
        f"<Key>{escape(key_name)}</Key><RequestId>{request_id}</RequestId>"
        f"<HostId>{uuid.uuid4().hex}</HostId></Error>"
    )
    return 409, {"Content-Type": "application/xml", "x-amz-request-id": request_id}, body


class EmulatedS3Backend(S3Backend):
    @property
    def _url_module(self) -> Any:
        # moto reloads its URL table here (custom endpoints come from the
        # environment); the handlers then point at RetrainS3Response.
        return url_module(super()._url_module, S3Response, RetrainS3Response)


class RetrainS3Response(S3Response):
    def put_object(self) -> Any:
        key_name = self.parse_key_name()
        if self.headers.get("If-None-Match") is not None:
            conflict = CONFLICTS.take(lambda armed: key_name.startswith(armed["key_prefix"]))
            if conflict:
                return conflict_response(key_name)
        with WRITE_LOCK:
            return super().put_object()

    def _bucket_response_delete_keys(self, bucket_name: str, authenticated: bool = True) -> Any:
        objects = xmltodict.parse(self.body, strip_whitespace=False).get("Delete", {}).get("Object", [])
        if isinstance(objects, list) and len(objects) > MAX_DELETE_KEYS:
            raise MalformedXML()
        return super()._bucket_response_delete_keys(bucket_name, authenticated)


def install() -> None:
    swap_backend_class(s3_backends, EmulatedS3Backend)
