"""Our signatures are accepted by the official library's RequestValidator."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from twilio.request_validator import RequestValidator

from legato.twilio.ids import ACCOUNT_SID, CALL_SID, account_sid, call_sid
from legato.twilio.signing import signature, valid

TOKEN = "lgk_7yPq2c0Vw4u1mX3sZr9tHk5nE8aB6dJf0gLiOp2QwRs"
URL = "http://127.0.0.1:8901/status?tenant=acme"


class MultiDict(dict[str, list[str]]):
    """What Flask or Django hands a receiver: every value of a repeated key."""

    def getall(self, name: str) -> list[str]:
        return self[name]


def test_single_values_validate() -> None:
    params = [("CallSid", "CA" + "0" * 32), ("CallStatus", "ringing"), ("To", "+919811000001"),
              ("AccountSid", account_sid("acc_1")), ("SequenceNumber", "1")]
    sig = signature(TOKEN, URL, params)
    assert RequestValidator(TOKEN).validate(URL, dict(params), sig)
    assert valid(TOKEN, URL, params, sig)
    assert not RequestValidator("another-token").validate(URL, dict(params), sig)
    tampered = dict(params, CallStatus="completed")
    assert not RequestValidator(TOKEN).validate(URL, tampered, sig)


def test_repeated_keys_each_count() -> None:
    body = ("StatusCallbackEvent=ringing&StatusCallbackEvent=answered&StatusCallbackEvent=ringing"
            "&Digits=12%23&To=%2B919811000001")
    pairs = [(k, v) for k, vs in parse_qs(body).items() for v in vs]
    sig = signature(TOKEN, URL, pairs)
    assert RequestValidator(TOKEN).validate(URL, MultiDict(parse_qs(body)), sig)
    # dropping one of the repeated values changes the signature
    fewer = [p for p in pairs if p != ("StatusCallbackEvent", "answered")]
    assert signature(TOKEN, URL, fewer) != sig


def test_get_requests_sign_the_url_only() -> None:
    url = URL + "&CallSid=CA" + "1" * 32 + "&Digits=5"
    assert RequestValidator(TOKEN).validate(url, {}, signature(TOKEN, url))


def test_sids_are_derived_and_shaped_like_twilio() -> None:
    a, b = account_sid("acc_1"), account_sid("acc_2")
    assert ACCOUNT_SID.match(a) and a != b and a == account_sid("acc_1")
    assert CALL_SID.match(call_sid("call_1")) and call_sid("call_1") != call_sid("call_2")


@pytest.mark.parametrize("value", ["é", "a b&c=d", ""])
def test_unicode_and_reserved_characters(value: str) -> None:
    params = {"Body": value, "From": "+1"}
    sig = signature(TOKEN, URL, params.items())
    assert RequestValidator(TOKEN).validate(URL, params, sig)
