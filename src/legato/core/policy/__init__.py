"""Pre-dial policies (DESIGN section 4): pure decisions over a policy snapshot.

Each submodule answers one question (is the caller blacklisted, is the number open, may
this number be dialled, is a line free, is the callee on DND); ``legato.core.admission``
puts the answers together into the verdict.
"""

from legato.core.policy.blacklist import Blacklist, BlacklistError
from legato.core.policy.erlang import erlang_b, lines_for
from legato.core.policy.lines import LineCounter, held_line
from legato.core.policy.office_hours import OfficeHours, OpenCheck, check_open
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

__all__ = [
    "Blacklist",
    "BlacklistError",
    "InvalidNumber",
    "LineCounter",
    "OfficeHours",
    "OpenCheck",
    "Refusal",
    "check_open",
    "check_permission",
    "erlang_b",
    "held_line",
    "lines_for",
    "normalize_number",
    "number_country",
    "number_type",
    "validate_allowed_countries",
    "validate_allowed_number_types",
]
