"""Reference tables behind the cause map: the SIP and Q.850 vocabularies and RFC 3398.

These are transcriptions of published standards, kept apart from Legato's own decisions
(in :mod:`legato.core.causes`) so that a reader can check each against its source:

- ``SIP_RESPONSES`` (in :mod:`legato.sip_responses`, shared with the SIP stack): the IANA
  "Response Codes" registry with the codes' default reason phrases.
- ``Q850_CAUSES``: the cause values defined by ITU-T Q.850 (with its amendments, which
  added 14 and 24). Values 1..127 absent here are not defined.
- ``RFC3398_SIP_TO_Q850``: RFC 3398 section 8.2.6.1, the cause value an ISUP gateway puts
  in the REL when it receives a SIP final response. Its rows "487 --- (no mapping)" and
  "488/606 --- by Warning header" carry no cause and are left out here.
"""

from __future__ import annotations

from legato.sip_responses import SIP_RESPONSES as SIP_RESPONSES

#: ITU-T Q.850 cause values and their names.
Q850_CAUSES: dict[int, str] = {
    1: "Unallocated (unassigned) number",
    2: "No route to specified transit network",
    3: "No route to destination",
    4: "Send special information tone",
    5: "Misdialled trunk prefix",
    6: "Channel unacceptable",
    7: "Call awarded and being delivered in an established channel",
    8: "Preemption",
    9: "Preemption - circuit reserved for reuse",
    14: "QoR: ported number",
    16: "Normal call clearing",
    17: "User busy",
    18: "No user responding",
    19: "No answer from user (user alerted)",
    20: "Subscriber absent",
    21: "Call rejected",
    22: "Number changed",
    23: "Redirection to new destination",
    24: "Call rejected due to feature at the destination",
    25: "Exchange routing error",
    26: "Non-selected user clearing",
    27: "Destination out of order",
    28: "Invalid number format (address incomplete)",
    29: "Facility rejected",
    30: "Response to STATUS ENQUIRY",
    31: "Normal, unspecified",
    34: "No circuit/channel available",
    38: "Network out of order",
    39: "Permanent frame mode connection out of service",
    40: "Permanent frame mode connection operational",
    41: "Temporary failure",
    42: "Switching equipment congestion",
    43: "Access information discarded",
    44: "Requested circuit/channel not available",
    46: "Precedence call blocked",
    47: "Resource unavailable, unspecified",
    49: "Quality of service not available",
    50: "Requested facility not subscribed",
    53: "Outgoing calls barred within CUG",
    55: "Incoming calls barred within CUG",
    57: "Bearer capability not authorized",
    58: "Bearer capability not presently available",
    62: "Inconsistency in designated outgoing access information and subscriber class",
    63: "Service or option not available, unspecified",
    65: "Bearer capability not implemented",
    66: "Channel type not implemented",
    69: "Requested facility not implemented",
    70: "Only restricted digital information bearer capability is available",
    79: "Service or option not implemented, unspecified",
    81: "Invalid call reference value",
    82: "Identified channel does not exist",
    83: "A suspended call exists, but this call identity does not",
    84: "Call identity in use",
    85: "No call suspended",
    86: "Call having the requested call identity has been cleared",
    87: "User not member of CUG",
    88: "Incompatible destination",
    90: "Non-existent CUG",
    91: "Invalid transit network selection",
    95: "Invalid message, unspecified",
    96: "Mandatory information element is missing",
    97: "Message type non-existent or not implemented",
    98: "Message not compatible with call state or message type non-existent or not "
        "implemented",
    99: "Information element / parameter non-existent or not implemented",
    100: "Invalid information element contents",
    101: "Message not compatible with call state",
    102: "Recovery on timer expiry",
    103: "Parameter non-existent or not implemented - passed on",
    110: "Message with unrecognized parameter discarded",
    111: "Protocol error, unspecified",
    127: "Interworking, unspecified",
}

#: RFC 3398 section 8.2.6.1: SIP final response received -> cause value in the ISUP REL.
RFC3398_SIP_TO_Q850: dict[int, int] = {
    400: 41,  # Temporary failure
    401: 21,  # Call rejected
    402: 21,
    403: 21,
    404: 1,  # Unallocated number
    405: 63,  # Service or option unavailable
    406: 79,  # Service/option not implemented
    407: 21,
    408: 102,  # Recovery on timer expiry
    410: 22,  # Number changed
    413: 127,  # Interworking
    414: 127,
    415: 79,
    416: 127,
    420: 127,
    421: 127,
    423: 127,
    480: 18,  # No user responding
    481: 41,
    482: 25,  # Exchange routing error
    483: 25,
    484: 28,  # Invalid number format
    485: 1,
    486: 17,  # User busy
    500: 41,
    501: 79,
    502: 38,  # Network out of order
    503: 41,
    504: 102,
    505: 127,
    513: 127,
    600: 17,
    603: 21,
    604: 1,
}
