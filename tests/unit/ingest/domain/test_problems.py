"""Problem bodies (RFC 9457) say what is wrong and where, never with the offending value."""

from __future__ import annotations

from leadrelay.contracts.errors import FieldError
from services.ingest.domain import problems


def test_invalid_names_each_field_once_with_a_pointer() -> None:
    problem = problems.invalid(
        [
            FieldError("/0/data/email", "must be an email address"),
            FieldError("/0/data/email", "must match the pattern x"),
            FieldError("/1/type", "must be one of: a"),
        ]
    )
    assert problem.body() == {
        "type": "https://leadrelay.dev/problems/invalid-event",
        "title": "Request body violates the event contract",
        "status": 422,
        "detail": "2 field(s) are invalid; see errors",
        "errors": [
            {"pointer": "/0/data/email", "detail": "must be an email address"},
            {"pointer": "/1/type", "detail": "must be one of: a"},
        ],
    }


def test_unavailable_asks_the_sender_to_retry_later() -> None:
    problem = problems.unavailable("broker down")
    assert problem.status == 503
    assert int(problem.headers["Retry-After"]) > 0
    assert "errors" not in problem.body()


def test_other_refusals_carry_their_status_and_what_to_do() -> None:
    assert problems.too_large(1024).body()["status"] == 413
    assert "1024" in problems.too_large(1024).detail
    media = problems.unsupported_media_type(["application/cloudevents+json"])
    assert media.status == 415
    assert "application/cloudevents+json" in media.detail
    assert problems.malformed("x").status == 400
    assert problems.unauthorized("x").status == 401


def test_batch_errors_are_prefixed_with_the_item_index() -> None:
    assert problems.prefixed([FieldError("/data/email", "m"), FieldError("", "n")], "/2") == [
        FieldError("/2/data/email", "m"),
        FieldError("/2", "n"),
    ]
