"""Digest authentication (RFC 2617 / 7616 / 8760) and the registrar (RFC 3261 §10.3)."""

from __future__ import annotations

import pytest

from legato.sip import RemoteProtocolError, Request, parse_message
from legato.sip import events as ev
from legato.sip.auth import (
    Challenge,
    Credentials,
    DigestServer,
    authorization_for,
    parse_auth_params,
)
from legato.sip.registrar import Registrar, address_of_record
from legato.sip.ua import UAConfig, UserAgent

from .net import Net

A = ("127.0.0.1", 5060)
TRUNK = ("127.0.0.1", 5080)


def test_rfc2617_md5_vector() -> None:
    challenge = Challenge(
        "testrealm@host.com",
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        "MD5",
        ("auth",),
        "5ccc069c403ebaf9f0171e9517f40e41",
    )
    value = authorization_for(
        challenge,
        Credentials("Mufasa", "Circle Of Life"),
        "GET",
        "/dir/index.html",
        cnonce="0a4f113b",
    )
    assert 'response="6629fae49393a05397450978507c4ef1"' in value
    assert "nc=00000001" in value and 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in value


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_vectors(algorithm: str, expected: str) -> None:
    header = (
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    challenge = Challenge.parse(header)
    assert challenge.qop == ("auth", "auth-int")
    value = authorization_for(
        challenge,
        Credentials("Mufasa", "Circle of Life"),
        "GET",
        "/dir/index.html",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert f'response="{expected}"' in value


def test_challenge_parse_errors_name_the_problem() -> None:
    for bad, message in (
        ('Basic realm="x"', "scheme"),
        ('Digest nonce="n"', "realm and nonce"),
        ('Digest realm="r", nonce="n", algorithm=SHA-1', "algorithm"),
        ('Digest realm="r, nonce=n', "unterminated"),
    ):
        with pytest.raises(RemoteProtocolError, match=message):
            Challenge.parse(bad)
    assert parse_auth_params('Digest a="x\\"y", b=2')[1] == {"a": 'x"y', "b": "2"}


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256", "SHA-512-256", "SHA-256-sess"])
def test_digest_server_accepts_right_password_only_once_per_nc(algorithm: str) -> None:
    server = DigestServer("legato", secret=b"k" * 32, algorithm=algorithm)
    challenge = Challenge.parse(server.challenge(100.0))
    creds = Credentials("agent1", "pw")
    passwords = {"agent1": "pw"}.get
    good = authorization_for(challenge, creds, "REGISTER", "sip:legato")
    assert server.verify(good, "REGISTER", passwords, 101.0) == (True, False, "agent1")
    assert server.verify(good, "REGISTER", passwords, 102.0)[0] is False  # replayed nc
    bad = authorization_for(challenge, Credentials("agent1", "nope"), "REGISTER", "sip:legato")
    assert server.verify(bad, "REGISTER", passwords, 101.0) == (False, False, "agent1")
    late = authorization_for(challenge, creds, "REGISTER", "sip:legato", nc=2)
    assert server.verify(late, "REGISTER", passwords, 1000.0) == (False, True, "agent1")
    forged = good.replace(challenge.nonce, "100.000.deadbeef")
    assert server.verify(forged, "REGISTER", passwords, 101.0)[0] is False


def trunk_net() -> tuple[Net, DigestServer]:
    return Net(UserAgent(UAConfig(A)), UserAgent(UAConfig(TRUNK))), DigestServer("trunk")


@pytest.mark.parametrize("status", [401, 407])
def test_invite_answers_a_digest_challenge(status: int) -> None:
    net, digest = trunk_net()
    creds = Credentials("acct", "s3cret")
    a_leg = net.agents[A].invite(
        "sip:+15551234@127.0.0.1:5080",
        from_="sip:acct@127.0.0.1",
        now=0.0,
        credentials=creds,
        body=b"v=0\r\n",
    )
    net.deliver()
    (first,) = net.take(TRUNK)
    assert isinstance(first, ev.IncomingCall)
    header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    answer_header = "Authorization" if status == 401 else "Proxy-Authorization"
    net.agents[TRUNK].respond(first.leg, status, 0.0, headers=[(header, digest.challenge(0.0))])
    net.advance(0.05)
    assert net.take(A) == []  # the challenge is handled, not reported
    (second,) = net.take(TRUNK)
    assert isinstance(second, ev.IncomingCall)
    request = second.request
    assert request.cseq.seq == 2 and request.call_id == first.request.call_id
    assert request.from_.tag == first.request.from_.tag and request.body == b"v=0\r\n"
    ok, _, user = digest.verify(
        request.get(answer_header) or "", "INVITE", {"acct": "s3cret"}.get, 0.1
    )
    assert ok and user == "acct"
    net.agents[TRUNK].respond(second.leg, 200, 0.1)
    net.advance(0.05)
    assert [type(e) for e in net.take(A)] == [ev.Answered]
    net.agents[A].bye(a_leg, net.now)
    net.advance(0.05)
    assert [type(e) for e in net.take(A)] == [ev.Ended]


def test_wrong_credentials_fail_after_one_retry() -> None:
    net, digest = trunk_net()
    net.agents[A].invite(
        "sip:x@127.0.0.1:5080",
        from_="sip:acct@127.0.0.1",
        now=0.0,
        credentials=Credentials("acct", "wrong"),
    )
    for _ in range(2):
        net.deliver()
        (incoming,) = net.take(TRUNK)
        net.agents[TRUNK].respond(
            incoming.leg,
            401,
            net.now,  # type: ignore[union-attr]
            headers=[("WWW-Authenticate", digest.challenge(net.now))],
        )
        net.advance(0.05)
    (failed,) = net.take(A)
    assert isinstance(failed, ev.Failed) and failed.status == 401


def register(
    contact: str,
    cseq: int,
    expires: str | None = None,
    auth: str | None = None,
    call_id: str = "reg1",
) -> Request:
    headers = [
        ("Via", f"SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKr{cseq}"),
        ("From", "<sip:agent1@legato>;tag=r"),
        ("To", "<sip:agent1@legato>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} REGISTER"),
        ("Contact", contact),
    ]
    if expires is not None:
        headers.append(("Expires", expires))
    if auth is not None:
        headers.append(("Authorization", auth))
    return Request("REGISTER", "sip:legato", headers)


def test_registrar_challenges_binds_expires_and_looks_up() -> None:
    digest = DigestServer("legato")
    registrar = Registrar({"agent1": "pw"}.get, auth=digest, min_expires=60)
    first = registrar.handle(register("<sip:agent1@127.0.0.1:5090>", 1), 0.0)
    assert first.status == 401
    challenge = Challenge.parse(first.get("WWW-Authenticate") or "")
    auth = authorization_for(challenge, Credentials("agent1", "pw"), "REGISTER", "sip:legato")
    ok = registrar.handle(register("<sip:agent1@127.0.0.1:5090>", 2, "120", auth), 1.0)
    assert ok.status == 200 and ok.get("Contact") == "<sip:agent1@127.0.0.1:5090>;expires=120"
    (binding,) = registrar.lookup("sip:agent1@LEGATO", 60.0)
    assert binding.uri == "sip:agent1@127.0.0.1:5090"
    assert registrar.lookup("sip:agent1@legato", 121.0) == []  # expired
    auth2 = authorization_for(
        challenge, Credentials("agent1", "pw"), "REGISTER", "sip:legato", nc=2
    )
    brief = registrar.handle(register("<sip:agent1@127.0.0.1:5090>", 3, "10", auth2), 2.0)
    assert brief.status == 423 and brief.get("Min-Expires") == "60"
    bad = authorization_for(challenge, Credentials("agent1", "no"), "REGISTER", "sip:legato", nc=3)
    assert registrar.handle(register("<sip:a@h>", 4, None, bad), 3.0).status == 401


def test_registrar_without_auth_handles_star_q_and_order() -> None:
    registrar = Registrar(lambda user: None, auth=None)
    assert registrar.handle(register("<sip:a@1.1.1.1>;q=0.5", 1), 0.0).status == 200
    assert registrar.handle(register("<sip:a@2.2.2.2>;q=0.9", 2), 0.0).status == 200
    assert [b.uri for b in registrar.lookup("sip:agent1@legato", 1.0)] == [
        "sip:a@2.2.2.2",
        "sip:a@1.1.1.1",
    ]
    assert registrar.handle(register("<sip:a@1.1.1.1>", 1), 0.0).status == 500  # old CSeq
    assert registrar.handle(register("*", 3), 0.0).status == 400  # * needs Expires: 0
    assert registrar.handle(register("<sip:a@1.1.1.1>;q=7", 4), 0.0).status == 400
    assert registrar.handle(register("*", 5, "0"), 0.0).status == 200
    assert registrar.lookup("sip:agent1@legato", 1.0) == []
    with pytest.raises(ValueError):
        Registrar(lambda u: None, auth=None, min_expires=0)
    assert address_of_record("sips:Bob@Example.COM:5061;transport=tls") == "sip:Bob@example.com"


def test_registrar_refuses_registering_another_users_aor() -> None:
    digest = DigestServer("legato")
    registrar = Registrar({"agent2": "pw2", "agent1": "pw"}.get, auth=digest)
    challenge = Challenge.parse(digest.challenge(0.0))
    auth = authorization_for(challenge, Credentials("agent2", "pw2"), "REGISTER", "sip:legato")
    assert registrar.handle(register("<sip:x@h>", 1, None, auth), 0.0).status == 403


def test_ua_with_registrar_answers_register() -> None:
    agent = UserAgent(UAConfig(A), registrar=Registrar(lambda u: None, auth=None))
    agent.receive_datagram(
        register("<sip:agent1@127.0.0.1:5090>", 1).to_bytes(), ("127.0.0.1", 5090), 0.0
    )
    ((data, _),) = agent.datagrams_to_send(0.0)
    response = parse_message(data)
    assert response.status == 200  # type: ignore[union-attr]
    assert agent.registrar is not None
    assert agent.registrar.lookup("sip:agent1@legato", 0.0)[0].uri == "sip:agent1@127.0.0.1:5090"
