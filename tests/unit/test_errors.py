"""classify: Given any exception a handler raised, When classified, Then the one Failure every error renderer reads."""

from __future__ import annotations

import logging

import pytest
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.testing import RequestFactory

from app.errors import (
    BadRequest,
    Failure,
    NotFound,
    TooLarge,
    TooManyRequests,
    Unauthorized,
    UnsupportedMedia,
    classify,
    validation_text,
)

REQUEST = RequestFactory().get("/imports/7")
TOO_LARGE = "the file is larger than this service accepts"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (BadRequest("bad"), 400, "bad_request"),
        (Unauthorized("who"), 401, "unauthorized"),
        (NotFound("gone"), 404, "not_found"),
        (TooLarge("big"), 413, "too_large"),
        (UnsupportedMedia("what"), 415, "unsupported_media_type"),
    ],
)
def test_an_api_error_keeps_its_status_code_and_sentence(error: Exception, status: int, code: str) -> None:
    got = classify(error, REQUEST, too_large=TOO_LARGE)
    assert got == Failure(status, str(error), code, None, None, None, error)  # type: ignore[arg-type]


def test_an_api_error_keeps_its_own_code_and_field() -> None:
    error = BadRequest("separator must be one of ...", code="bad_separator", field="separator")
    got = classify(error, REQUEST, too_large=TOO_LARGE)
    assert (got.status, got.code, got.field, got.error) == (400, "bad_separator", "separator", error)


def test_too_many_requests_says_when_to_retry() -> None:
    got = classify(TooManyRequests("slow down", retry_after=7), REQUEST, too_large=TOO_LARGE)
    assert (got.status, got.code, got.headers) == (429, "rate_limited", {"Retry-After": "7"})


def test_a_framework_refusal_keeps_its_status_detail_and_headers() -> None:
    got = classify(NotAuthorizedException("no token", headers={"WWW-Authenticate": "Bearer"}), REQUEST, too_large=TOO_LARGE)
    assert (got.status, got.message, got.code, got.headers, got.error) == (401, "no token", "http_401", {"WWW-Authenticate": "Bearer"}, None)


def test_a_body_over_the_limit_gets_the_dialects_own_sentence() -> None:
    got = classify(HTTPException(status_code=413, detail="Request Entity Too Large"), REQUEST, too_large=TOO_LARGE)
    assert (got.status, got.message, got.code) == (413, TOO_LARGE, "http_413")


def test_validation_details_travel_and_read_as_one_line() -> None:
    details = [{"key": "dataset", "message": "Field required"}, {"key": "mode", "message": "Expected one of insert, update"}]
    got = classify(ValidationException("Validation failed for POST /imports", extra=details), REQUEST, too_large=TOO_LARGE)
    assert (got.status, got.code, got.extra) == (400, "http_400", details)
    assert validation_text(got.extra) == "dataset: Field required; mode: Expected one of insert, update"
    assert validation_text(None) == "" and validation_text(["not a dict"]) == ""


def test_anything_else_is_a_500_that_says_nothing_was_done_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="importer.app"):
        try:  # as the framework calls the error handler: while the exception is being handled
            raise ZeroDivisionError("division by zero")
        except ZeroDivisionError as exc:
            got = classify(exc, REQUEST, too_large=TOO_LARGE)
    assert got == Failure(500, "internal error; the request was not processed", "internal_error")
    assert "unhandled error on GET /imports/7" in caplog.text and "ZeroDivisionError" in caplog.text
