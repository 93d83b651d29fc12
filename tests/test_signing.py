"""Domain separation: what the server signs for one purpose never verifies as another."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from core.errors import InvalidQuery, Unauthenticated
from flight_server.tickets import TicketSigner
from security.principals import Principal, TokenAuthenticator
from security.signing import Signer


def test_a_mac_is_valid_only_in_its_own_domain() -> None:
    signer = Signer(b"k" * 32)
    mac = signer.sign("ticket", b"payload")
    assert signer.verify("ticket", b"payload", mac)
    assert not signer.verify("session-token", b"payload", mac)
    assert not Signer(b"other" * 8).verify("ticket", b"payload", mac)


def test_tickets_round_trip_typed_parameters_and_reject_tampering() -> None:
    tickets = TicketSigner(b"s" * 32)
    params = pa.table({"a": pa.array([1], pa.int64()), "b": pa.array([b"\x00\xff"]), "c": pa.array([float("nan")])})
    ticket = tickets.sign("ana", "SELECT $1, $2, $3", params)
    sql, back = tickets.verify(ticket, "ana")
    assert sql == "SELECT $1, $2, $3" and back is not None and back.schema == params.schema
    assert back.column("b")[0].as_py() == b"\x00\xff"  # bytes stay bytes
    assert math.isnan(back.column("c")[0].as_py())  # NaN stays NaN
    with pytest.raises(InvalidQuery, match="not one this server issued"):
        tickets.verify(ticket[:40] + b"X" + ticket[41:], "ana")


def test_a_session_token_is_not_a_ticket() -> None:
    secret = b"z" * 32
    auth = TokenAuthenticator([("static-token", Principal("ana"))], secret=secret)
    token = auth.issue_session(Principal("ana"))
    assert auth.from_bearer(token).user == "ana"
    with pytest.raises(InvalidQuery):
        TicketSigner(secret).verify(token.encode().ljust(64, b"x"), "ana")


def test_rotating_a_users_token_ends_the_sessions_it_opened() -> None:
    """Replicas (or a restart) with the same secret but the user's new token refuse the old session token; the
    user's other principals' sessions stay valid."""
    secret = b"z" * 32
    before = TokenAuthenticator([("old-token", Principal("ana")), ("bo-token", Principal("bo"))], secret=secret)
    ana, bo = before.issue_session(before.from_basic("ana", "old-token")), before.issue_session(Principal("bo"))
    after = TokenAuthenticator([("new-token", Principal("ana")), ("bo-token", Principal("bo"))], secret=secret)
    with pytest.raises(Unauthenticated, match="not valid; authenticate again"):
        after.from_bearer(ana)
    assert after.from_bearer(bo).user == "bo"
    assert after.from_bearer(after.issue_session(after.from_basic("ana", "new-token"))).user == "ana"
