"""Dialog state (RFC 3261 §12): identifiers, sequence numbers, target and route set, and
the construction of requests inside the dialog (§12.2.1.1, loose and strict routing)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from legato.sip.errors import RemoteProtocolError
from legato.sip.fields import NameAddr
from legato.sip.message import Request, Response


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(slots=True)
class Dialog:
    """One dialog. `local_header`/`remote_header` are the From/To values our requests carry
    (tags included), kept verbatim so a dialog request costs no re-parsing."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_header: str
    remote_header: str
    local_seq: int
    remote_seq: int | None
    remote_target: str
    route_set: tuple[str, ...] = ()  # a tuple: most dialogs have none, and share ()
    state: DialogState = DialogState.EARLY

    @classmethod
    def as_uac(cls, invite: Request, response: Response) -> Dialog:
        """§12.1.2: the dialog a 1xx/2xx with a To tag creates at the caller."""
        to = response.to
        if to.tag is None:
            raise RemoteProtocolError("To: a response that creates a dialog needs a tag")
        from_ = invite.from_
        return cls(
            call_id=invite.call_id,
            local_tag=from_.tag or "",
            remote_tag=to.tag,
            local_header=invite.get("From") or "",
            remote_header=response.get("To") or "",
            local_seq=invite.cseq.seq,
            remote_seq=None,
            remote_target=_contact_uri(response) or invite.uri,
            route_set=tuple(reversed(response.get_all("Record-Route"))),
            state=DialogState.EARLY if response.status < 200 else DialogState.CONFIRMED,
        )

    @classmethod
    def as_uas(cls, invite: Request, local_tag: str) -> Dialog:
        """§12.1.1: the dialog our 1xx/2xx with `local_tag` creates at the callee."""
        from_ = invite.from_
        target = _contact_uri(invite)
        if target is None:
            raise RemoteProtocolError("Contact: an INVITE must carry exactly one Contact URI")
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=from_.tag or "",
            local_header=f"{invite.get('To')};tag={local_tag}",
            remote_header=invite.get("From") or "",
            local_seq=0,
            remote_seq=invite.cseq.seq,
            remote_target=target,
            route_set=tuple(invite.get_all("Record-Route")),
        )

    def update_from_response(self, response: Response) -> None:
        """A later 1xx/2xx for the dialog-creating INVITE: a 2xx confirms the dialog and
        (§12.1.2, §13.2.2.4) its Record-Route and Contact replace the early ones."""
        contact = _contact_uri(response)
        if contact is not None:
            self.remote_target = contact
        if self.state is DialogState.EARLY:
            self.route_set = tuple(reversed(response.get_all("Record-Route")))
            if 200 <= response.status < 300:
                self.state = DialogState.CONFIRMED

    def check_remote_cseq(self, request: Request) -> bool:
        """§12.2.2: a remote CSeq lower than the last one is out of order (answer 500)."""
        seq = request.cseq.seq
        if self.remote_seq is not None and seq < self.remote_seq and request.method != "ACK":
            return False
        if request.method not in ("ACK", "CANCEL"):
            self.remote_seq = seq
        return True

    def new_request(
        self, method: str, via: str, contact: str | None, *, cseq: int | None = None
    ) -> Request:
        """§12.2.1.1: a request inside the dialog. ACK and CANCEL reuse a given CSeq."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        uri, routes = self._request_uri_and_routes()
        headers: list[tuple[str, str]] = [
            ("Via", via),
            ("Max-Forwards", "70"),
            ("From", self.local_header),
            ("To", self.remote_header),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
        headers += [("Route", r) for r in routes]
        if contact is not None and method in ("INVITE", "UPDATE", "SUBSCRIBE", "REFER"):
            headers.append(("Contact", contact))
        return Request(method, uri, headers)

    def _request_uri_and_routes(self) -> tuple[str, list[str]]:
        if not self.route_set:
            return self.remote_target, []
        first = NameAddr.parse(self.route_set[0], "Route")
        if "lr" in first.parsed_uri.params:
            return self.remote_target, list(self.route_set)
        # Strict routing (RFC 2543 peers): the first route becomes the Request-URI.
        return first.uri, [*self.route_set[1:], f"<{self.remote_target}>"]

    def next_hop(self) -> str:
        """The URI whose host/port the request goes to (first route or the remote target)."""
        if self.route_set:
            return NameAddr.parse(self.route_set[0], "Route").uri
        return self.remote_target


def _contact_uri(message: Request | Response) -> str | None:
    contacts = message.get_all("Contact")
    if len(contacts) != 1:
        return None
    uri = NameAddr.parse(contacts[0], "Contact").uri
    return None if uri == "*" else uri
