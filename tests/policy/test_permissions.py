"""Dialling permissions: numbers, countries and types as phonenumbers says."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legato.core.policy import permissions
from legato.core.policy.permissions import (
    InvalidNumber,
    Refusal,
    check_permission,
    normalize_number,
    number_country,
    number_type,
    validate_allowed_countries,
    validate_allowed_number_types,
)

IN_MOBILE = "+919811000001"
IN_FIXED = "+918047001000"
US_EITHER = "+14155552671"  # the US plan does not tell fixed lines from mobiles
US_TOLL_FREE = "+18002752273"
US_PREMIUM = "+19005551234"
GB_FIXED = "+442071838750"
INTL_FREEPHONE = "+80012345678"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        (IN_MOBILE, IN_MOBILE),
        ("+91 98110 00001", IN_MOBILE),
        ("  +91-98110-00001 ", IN_MOBILE),
        ("+1 (415) 555-2671", US_EITHER),
        ("+44 20 7183 8750", GB_FIXED),
    ],
)
def test_normalize_to_e164(raw: str, e164: str) -> None:
    assert normalize_number(raw) == e164


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("9811000001", "not in international form"),
        ("09811000001", "not in international form"),
        ("", "not in international form"),
        ("+91981100", "not a valid number"),
        ("+919811000001234", "not a valid number"),
        ("+999123456", "not a telephone number"),
        ("+", "not a telephone number"),
        ("+91 call me", "not a"),
    ],
)
def test_invalid_numbers_are_refused_clearly(raw: str, rule: str) -> None:
    with pytest.raises(InvalidNumber, match=rule) as info:
        normalize_number(raw)
    assert repr(raw) in str(info.value)
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidNumber):
        check_permission(raw, None, None)


@pytest.mark.parametrize(
    ("number", "country", "kind"),
    [
        (IN_MOBILE, "IN", "mobile"),
        (IN_FIXED, "IN", "fixed_line"),
        (US_EITHER, "US", "fixed_line_or_mobile"),
        (US_TOLL_FREE, "US", "toll_free"),
        (US_PREMIUM, "US", "premium_rate"),
        (GB_FIXED, "GB", "fixed_line"),
        (INTL_FREEPHONE, "001", "toll_free"),
    ],
)
def test_country_and_type(number: str, country: str, kind: str) -> None:
    assert number_country(number) == country
    assert number_type(number) == kind


def test_no_restriction_allows_everything_valid() -> None:
    for number in (IN_MOBILE, US_PREMIUM, INTL_FREEPHONE):
        assert check_permission(number, None, None) is None


def test_country_refusal_names_country_and_allowed_list() -> None:
    refusal = check_permission(US_EITHER, frozenset({"IN", "GB"}), None)
    assert refusal == Refusal("country", "+14155552671 is in US, not an allowed country (GB, IN)")
    assert check_permission(IN_MOBILE, frozenset({"IN", "GB"}), None) is None
    # A non-geographic number is in no country.
    assert check_permission(INTL_FREEPHONE, frozenset({"IN"}), None) is not None


def test_country_is_checked_before_type() -> None:
    refusal = check_permission(US_PREMIUM, frozenset({"IN"}), frozenset({"mobile"}))
    assert refusal is not None and refusal.rule == "country"


def test_type_refusal_names_type_and_allowed_list() -> None:
    refusal = check_permission(US_PREMIUM, None, frozenset({"mobile", "fixed_line"}))
    assert refusal == Refusal(
        "number_type",
        "+19005551234 is a premium_rate number, not an allowed type (fixed_line, mobile)",
    )
    assert check_permission(US_TOLL_FREE, None, frozenset({"toll_free"})) is None


@pytest.mark.parametrize(
    ("allowed", "ok"),
    [
        ({"mobile"}, True),
        ({"fixed_line"}, True),
        ({"fixed_line_or_mobile"}, True),
        ({"toll_free", "voip"}, False),
        (set(), False),
    ],
)
def test_fixed_line_or_mobile_rule(allowed: set[str], ok: bool) -> None:
    assert (check_permission(US_EITHER, None, frozenset(allowed)) is None) is ok


def test_allowing_fixed_line_or_mobile_does_not_allow_a_pure_mobile() -> None:
    refusal = check_permission(IN_MOBILE, None, frozenset({"fixed_line_or_mobile"}))
    assert refusal is not None and refusal.rule == "number_type"


def test_validate_allowed_countries() -> None:
    assert validate_allowed_countries(["IN", "us", " gb "]) == {"IN", "US", "GB"}
    with pytest.raises(ValueError, match=r"^allowed_countries: 'XX', 'IND' not an ISO 3166"):
        validate_allowed_countries(["IN", "XX", "IND"])
    with pytest.raises(ValueError, match="allowed_countries"):
        validate_allowed_countries(["001"])


def test_validate_allowed_number_types() -> None:
    assert validate_allowed_number_types(["mobile", "toll_free"]) == {"mobile", "toll_free"}
    with pytest.raises(ValueError, match=r"^allowed_number_types: 'landline' not a number"):
        validate_allowed_number_types(["mobile", "landline"])
    with pytest.raises(ValueError, match="allowed_number_types"):
        validate_allowed_number_types(["MOBILE"])


def test_type_names_come_from_phonenumbers() -> None:
    assert {
        "mobile", "fixed_line", "fixed_line_or_mobile", "toll_free", "premium_rate",
        "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail", "unknown",
    } == permissions.ALLOWED_TYPE_NAMES  # fmt: skip


def test_facts_are_cached() -> None:
    number = "+91 80 4700 1001"
    before = permissions._facts.cache_info()
    for _ in range(50):
        check_permission(number, frozenset({"IN"}), frozenset({"fixed_line"}))
    after = permissions._facts.cache_info()
    assert after.misses - before.misses == 1
    assert after.hits - before.hits == 49
    # Invalid numbers are cached too (as their reason), and still raise each time.
    for _ in range(2):
        with pytest.raises(InvalidNumber):
            normalize_number("+91 0")


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failure
@given(st.text(max_size=30))
def test_any_text_is_either_a_number_or_an_invalid_number(raw: str) -> None:
    try:
        e164 = normalize_number(raw)
    except InvalidNumber:
        return
    assert e164.startswith("+") and e164[1:].isdigit()
    assert normalize_number(e164) == e164
