"""Errors as RFC 9457 problem details (`application/problem+json`).

Views and services raise AppError subclasses (or the geographic core's errors); the handlers
here are the only place that turns them into HTTP responses. Internals never reach the client.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from fieldline.gis.errors import Conflict, GisError, InvalidField, NotFound
from fieldline.server.tasks.states import IllegalTransition, allowed_actions

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


class AppError(Exception):
    status = 500
    title = "Internal Server Error"

    def __init__(self, detail: str, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra


class BadRequest(AppError):
    status, title = 400, "Bad Request"


class Unauthorized(AppError):
    status, title = 401, "Unauthorized"


class Forbidden(AppError):
    status, title = 403, "Forbidden"


class NotFoundError(AppError):
    status, title = 404, "Not Found"


class ConflictError(AppError):
    status, title = 409, "Conflict"


class PayloadTooLarge(AppError):
    status, title = 413, "Payload Too Large"


class UnsupportedMediaType(AppError):
    status, title = 415, "Unsupported Media Type"


class Unprocessable(AppError):
    status, title = 422, "Unprocessable Content"


def problem(
    status: int, title: str, detail: str, field: str | None = None, **extra: Any
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if field:
        body["field"] = field
        body["invalid_params"] = [{"name": field, "reason": detail}]
    body.update(extra)
    return Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)


def from_gis_error(error: GisError) -> AppError:
    if isinstance(error, InvalidField):
        return Unprocessable(error.detail, field=error.field)
    if isinstance(error, NotFound):
        return NotFoundError(error.detail)
    if isinstance(error, Conflict):
        return ConflictError(error.detail)
    return BadRequest(error.detail)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AppError)
    def _app_error(error: AppError) -> Response:
        response = problem(error.status, error.title, error.detail, error.field, **error.extra)
        if isinstance(error, Unauthorized):
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.errorhandler(GisError)
    def _gis_error(error: GisError) -> Response:
        return _app_error(from_gis_error(error))

    @app.errorhandler(IllegalTransition)
    def _illegal_transition(error: IllegalTransition) -> Response:
        # The client's view of the task is stale: say where it stands now.
        return problem(
            409,
            "Conflict",
            str(error),
            state=error.state,
            allowed_actions=list(allowed_actions(error.state)),
        )

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        return problem(status, error.name, error.description or error.name)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return problem(500, "Internal Server Error", "the server failed; the error is logged")
