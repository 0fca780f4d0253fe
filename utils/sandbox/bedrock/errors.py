"""Bedrock's modeled errors, and how a resource that fails while advancing reports it.

:class:`ApiError` carries the modeled error code (the shape name in the ``bedrock`` and
``bedrock-runtime`` service models), the message and the HTTP status; ``server.py`` turns it
into Bedrock's JSON error response with the ``x-amzn-ErrorType`` header.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

# HTTP status of each modeled error (bedrock and bedrock-runtime service models).
ERROR_STATUS: dict[str, int] = {
    "ValidationException": 400,
    "ConflictException": 400,
    "ServiceQuotaExceededException": 400,
    "TooManyTagsException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408,
    "ModelErrorException": 424,
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}


class ApiError(Exception):
    """A modeled Bedrock error: ``code`` (shape name), ``message`` and HTTP ``status``."""

    def __init__(self, code: str, message: str, status: int | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else ERROR_STATUS.get(code, 400)
        self.extra = extra


def validation(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def not_found(message: str) -> ApiError:
    return ApiError("ResourceNotFoundException", message)


def conflict(message: str) -> ApiError:
    return ApiError("ConflictException", message)


class S3WriteError(Exception):
    """The service could not write an output object (bucket deleted, ...)."""

    def __init__(self, bucket: str, key: str) -> None:
        super().__init__(f"{bucket}/{key}")
        self.bucket = bucket
        self.key = key

    @property
    def failure_message(self) -> str:
        return (
            "Amazon S3 perms missing (PutObject): Could not validate PutObject permissions to access "
            f"S3 bucket: {self.bucket} at key {self.key}"
        )


INTERNAL_FAILURE = "Encountered an unexpected error when processing the request, please try again"


def failure_message(exc: BaseException) -> str:
    """The failureMessage of a resource that failed with ``exc`` while advancing."""
    return exc.failure_message if isinstance(exc, S3WriteError) else INTERNAL_FAILURE


def log_internal(what: str, exc: BaseException) -> None:
    """A sandbox bug while advancing a resource: say so on stderr (S3 write failures are not bugs)."""
    if isinstance(exc, S3WriteError):
        return
    print(f"sandbox: internal error advancing {what}: {exc!r}", file=sys.stderr, flush=True)
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
