"""Extensions of moto's server for retrain's tests (see ../README.md)."""

from collections.abc import Callable, Iterable

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from . import ec2, efs, events, fsx, logs, s3, s3_eventbridge, sagemaker, servicequotas, sqs
from .control import ControlApp


def install() -> None:
    """Swaps in the extended backends; must run before the server takes requests."""
    ec2.install()
    efs.install()
    fsx.install()
    sagemaker.install()
    servicequotas.install()
    events.install()
    logs.install()
    s3.install()
    s3_eventbridge.install()
    sqs.install()


def application() -> Callable[..., Iterable[bytes]]:
    """moto's WSGI app with the control API in front of it."""
    return ControlApp(DomainDispatcherApplication(create_backend_app))


__all__ = ["application", "install"]
