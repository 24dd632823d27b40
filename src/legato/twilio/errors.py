"""Twilio's error body, `{code, message, more_info, status}`, with Twilio's own codes, so
`TwilioRestException.code` and `.status` mean what they mean against Twilio."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

AUTH = 20003  # authentication failed
NOT_FOUND = 20404  # the resource does not exist (or belongs to another account)
UNKNOWN_PARAMETER = 20001  # a parameter Legato does not support (never silently ignored)
TO_MISSING = 21201
TO_INVALID = 21211
FROM_INVALID = 21212
FROM_NOT_OWNED = 21210
FROM_MISSING = 21213
URL_INVALID = 21205
SEND_DIGITS_INVALID = 21206
CALL_STATE = 21220  # the call is not in a state that allows this
TWIML_INVALID = 12100  # the TwiML document cannot be parsed or run


class TwilioError(Exception):
    """An error the Twilio layer answers with (a 4xx in Twilio's shape)."""

    def __init__(self, status: int, code: int, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message,
                "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
                "status": self.status}


def bad_parameter(code: int, message: str) -> TwilioError:
    return TwilioError(400, code, message)


def not_found(what: str) -> TwilioError:
    return TwilioError(404, NOT_FOUND, f"The requested resource {what} was not found")


async def _handle(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TwilioError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def install(app: FastAPI) -> None:
    """Answer `TwilioError`s in Twilio's shape (the native API keeps problem+json)."""
    app.add_exception_handler(TwilioError, _handle)
