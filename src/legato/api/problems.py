"""Errors as RFC 9457 problem details (`application/problem+json`).

Every error names what went wrong in terms a client can act on: validation problems list
each field (as a path such as `to[1]` or `config.office_hours.days.mon`) and the rule it
broke. Unexpected failures are logged with their traceback and answered with a bare 500:
no stack trace ever reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from legato.core.errors import KeyProblem

log = logging.getLogger("legato.api")

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    """One broken rule of the request."""

    field: str = Field(description="path of the field, e.g. `to[1]` or `config.lines`")
    location: str = Field(description="body, query, path or header")
    rule: str = Field(description="the rule that failed, e.g. `missing`, `e164`")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


class ApiProblem(Exception):
    """Raised by routes to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        kind: str | None = None,
        errors: Sequence[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.kind = kind
        self.errors = list(errors) if errors else None
        self.headers = headers


def store_unavailable(exc: Exception, what: str = "the request was not carried out") -> ApiProblem:
    """A 503 for a request the store could not serve (its database unreachable, say):
    the client may retry; nothing was changed."""
    log.warning("store unavailable: %s: %s", type(exc).__name__, exc)
    return ApiProblem(
        503,
        "Store unavailable",
        f"{what} ({type(exc).__name__}: the store is unavailable); retry later",
        kind="store-unavailable",
        headers={"Retry-After": "5"},
    )


def field_problem(field: str, rule: str, message: str, location: str = "body") -> ApiProblem:
    """A 422 for one field, named the same way as the automatic validation errors."""
    return ApiProblem(
        422,
        "Request is invalid",
        f"{field}: {message}",
        kind="validation",
        errors=[FieldError(field=field, location=location, rule=rule, message=message)],
    )


def not_found(what: str) -> ApiProblem:
    return ApiProblem(404, "Not found", f"{what} not found", kind="not-found")


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(request)"


def _message(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", ""))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def field_errors(
    errors: Sequence[Any], location: str | None = None, prefix: Sequence[int | str] = ()
) -> list[FieldError]:
    """Pydantic errors as field errors; FastAPI's `loc` starts with the location."""
    out: list[FieldError] = []
    for error in errors:
        loc = list(error.get("loc", ()))
        where = location
        if where is None:
            where = (
                str(loc.pop(0))
                if loc and loc[0] in ("body", "query", "path", "header", "cookie")
                else "body"
            )
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, KeyProblem):  # the validator named the exact key or item
            loc = [*loc, *cause.path]
        rule = str(error.get("type", "invalid"))
        if rule == "value_error" and error.get("ctx", {}).get("rule"):
            rule = str(error["ctx"]["rule"])
        out.append(
            FieldError(
                field=_path([*prefix, *loc]),
                location=where,
                rule=rule,
                message=_message(error),
            )
        )
    return out


def _respond(
    request: Request, problem: Problem, headers: dict[str, str] | None = None
) -> JSONResponse:
    problem.instance = request.url.path
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _type(kind: str | None) -> str:
    return f"urn:legato:problem:{kind}" if kind else "about:blank"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document."""

    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return _respond(
            request,
            Problem(
                type=_type(exc.kind),
                title=exc.title,
                status=exc.status,
                detail=exc.detail,
                errors=exc.errors,
            ),
            exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = field_errors(exc.errors())
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
        return _respond(
            request,
            Problem(
                type=_type("validation"),
                title="Request is invalid",
                status=422,
                detail=detail,
                errors=errors,
            ),
        )

    @app.exception_handler(ValidationError)
    async def _model_validation(request: Request, exc: ValidationError) -> JSONResponse:
        errors = field_errors(exc.errors(), location="body")
        return _respond(
            request,
            Problem(
                type=_type("validation"),
                title="Request is invalid",
                status=422,
                detail="; ".join(f"{e.field}: {e.message}" for e in errors[:5]),
                errors=errors,
            ),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else None
        return _respond(
            request,
            Problem(title=_status_title(exc.status_code), status=exc.status_code, detail=detail),
            getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _respond(
            request,
            Problem(
                type=_type("internal"),
                title="Internal server error",
                status=500,
                detail="the server failed to handle this request; it has been logged",
            ),
        )


def _status_title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


#: OpenAPI `responses=` entries for the problems a route can answer with.
def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {
        400: "The body is not JSON or not UTF-8",
        401: "Missing or invalid API key",
        404: "Not found in this account",
        409: "Conflict",
        422: "Invalid request: each field and the rule it broke",
        503: "The store is unavailable: nothing was changed; retry after `Retry-After`",
    }
    return {
        s: {
            "model": Problem,
            "description": described.get(s, "Problem"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }
