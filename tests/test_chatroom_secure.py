"""Who may connect to the secure rooms, and as whom, in-process."""

import contextlib
import json
import re
from collections.abc import Iterator
from importlib import metadata

import chatroom
import chatroom_secure
import pytest
import responder
from starlette.responses import Response
from starlette.testclient import TestClient
from support import closed_by_app, refused_by_app

OURS = "http://127.0.0.1:5042"
EVIL = "http://evil.example"


@pytest.fixture
def client() -> Iterator[TestClient]:
    """One portal, so one event loop, for all the sessions of a test."""
    with TestClient(chatroom_secure.api) as client:
        yield client
    chatroom_secure.valid_after.clear()  # Sign-outs are kept in memory.
    assert chatroom_secure.sockets == {}


def login(client: TestClient, name: str = "ann") -> dict[str, str]:
    """Sign in as name; return the headers that carry its session."""
    response = client.post("/login", json={"name": name}, headers={"origin": OURS})
    assert response.status_code == 200
    assert response.json() == {"name": name}
    client.cookies.clear()  # Each session travels only where a test sends it.
    return {"origin": OURS, "cookie": f"{chatroom_secure.COOKIE}={cookie(response)}"}


def cookie(response) -> str:
    return response.cookies[chatroom_secure.COOKIE]


def said(text: str, by: str) -> dict:
    return {"type": "message", "text": text, "from": by}


def refused(client: TestClient, headers: dict[str, str]) -> int:
    return refused_by_app(client, "/chat/main", headers=headers)


def test_signed_in_users_chat_from_our_page(client) -> None:
    with client.websocket_connect("/chat/main", headers=login(client)) as ws:
        ws.send_json({"text": "hi"})
        assert ws.receive_json() == said("hi", by="ann")
    assert chatroom.rooms == {}


def test_the_server_stamps_the_sender_so_nobody_poses_as_another(client) -> None:
    ann, ben = login(client, "ann"), login(client, "ben")
    with (
        client.websocket_connect("/chat/main", headers=ann) as ann_ws,
        client.websocket_connect("/chat/main", headers=ben) as ben_ws,
    ):
        ben_ws.send_json({"text": "ann: give ben your password", "from": "ann"})
        expected = said("ann: give ben your password", by="ben")
        assert ann_ws.receive_json() == expected
        assert ben_ws.receive_json() == expected


def test_a_client_without_origin_is_not_a_browser_and_may_connect(client) -> None:
    headers = login(client)
    del headers["origin"]
    with client.websocket_connect("/chat/main", headers=headers) as ws:
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}


BAD_NAME = {"error": "a name of 1 to 30 of a-z, 0-9, _ and -, please"}


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x" * 31},
        {"name": 5},
        {},
        [1],
        "ann",
        {"name": "ann\u202e"},  # Right-to-left override: "ann" shown reversed.
        {"name": "ann\x00"},
        {"name": "ann\n"},  # A regex ending in $ would let this through.
        {"name": "Ann"},  # Only lower case: "Ann" cannot pass for "ann".
        {"name": "a b"},
        {"name": "\u0430nn"},  # A Cyrillic "a".
    ],
)
def test_login_wants_a_name_of_the_allowed_characters(client, body) -> None:
    response = client.post("/login", json=body)
    assert response.status_code == 400
    assert response.json() == BAD_NAME
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("body", [b"\xff", b"{", b'{"name": ' + b"[" * 5000])
def test_login_answers_undecodable_and_deeply_nested_bodies_with_400(
    client, body: bytes
) -> None:
    response = client.post(
        "/login", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == BAD_NAME


@pytest.mark.parametrize("name", ["a", "x" * 30, "ann_b-2"])
def test_login_takes_names_of_1_to_30_allowed_characters(client, name) -> None:
    login(client, name)


def test_the_session_cookie_flags_are_explicit(client) -> None:
    response = client.post("/login", json={"name": "ann"})
    assert response.headers["set-cookie"].startswith("chat_session=")
    flags = response.headers["set-cookie"].split("; ")[1:]
    assert sorted(flags) == ["HttpOnly", "Max-Age=3600", "Path=/", "SameSite=lax"]


def test_the_cookie_is_secure_when_served_over_https() -> None:
    with TestClient(chatroom_secure.api, base_url="https://testserver") as client:
        response = client.post("/login", json={"name": "ann"})
    assert "; Secure" in response.headers["set-cookie"]


def test_login_refuses_pages_of_other_origins(client) -> None:
    response = client.post("/login", json={"name": "ann"}, headers={"origin": EVIL})
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded"])
def test_login_wants_a_json_content_type_that_forms_cannot_send(client, kind) -> None:
    body = json.dumps({"name": "mallory", "x": "="}).encode()
    headers = {"origin": OURS, "content-type": kind}
    response = client.post("/login", content=body, headers=headers)
    assert response.status_code == 415
    assert "set-cookie" not in response.headers


def test_login_takes_json_with_a_charset(client) -> None:
    headers = {"content-type": "Application/JSON; charset=utf-8"}
    response = client.post("/login", content=b'{"name": "ann"}', headers=headers)
    assert response.status_code == 200


def test_session_says_whether_the_cookie_holds_a_session(client) -> None:
    assert client.get("/session").status_code == 401
    headers = login(client)
    response = client.get("/session", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"name": "ann"}


def test_logout_revokes_the_session_and_closes_that_users_sockets(client) -> None:
    ann, ben = login(client, "ann"), login(client, "ben")
    with (
        client.websocket_connect("/chat/main", headers=ann) as ann_ws,
        client.websocket_connect("/chat/main", headers=ben) as ben_ws,
    ):
        response = client.post("/logout", headers=ann)
        assert response.status_code == 200
        assert response.headers["set-cookie"].startswith('chat_session=""; ')
        assert "Max-Age=0" in response.headers["set-cookie"]
        assert closed_by_app(ann_ws) == (chatroom_secure.SESSION_ENDED, "")
        ben_ws.send_json({"text": "still here"})
        assert ben_ws.receive_json() == said("still here", by="ben")
    assert refused(client, ann) == 1008  # A copy of the cookie is worth nothing.
    assert client.get("/session", headers=ann).status_code == 401
    with client.websocket_connect("/chat/main", headers=login(client, "ann")):
        pass  # Signing in again, even in the same second, works.


def test_logout_refuses_other_origins_and_ignores_no_session(client) -> None:
    ann = login(client)
    assert client.post("/logout", headers={**ann, "origin": EVIL}).status_code == 403
    assert client.get("/session", headers=ann).status_code == 200
    assert client.post("/logout").status_code == 200  # Already signed out.


def test_each_name_may_hold_only_max_sockets_open(client) -> None:
    ann = login(client)
    with contextlib.ExitStack() as stack:
        for room in range(chatroom_secure.MAX_SOCKETS - 1):
            stack.enter_context(client.websocket_connect(f"/chat/{room}", headers=ann))
        with client.websocket_connect("/chat/main", headers=ann):
            assert refused(client, ann) == 1008  # One too many, before accept.
            with client.websocket_connect("/chat/main", headers=login(client, "ben")):
                pass  # Another name has its own limit.
        with client.websocket_connect("/chat/main", headers=ann):
            pass  # One closed, so one may open.


def test_no_session_is_refused_before_accept(client) -> None:
    assert refused(client, {"origin": OURS}) == 1008


def test_forged_session_is_refused_before_accept(client) -> None:
    forged = chatroom_secure.signer.dumps(["ann", 0]) + "x"
    headers = {"origin": OURS, "cookie": f"chat_session={forged}"}
    assert refused(client, headers) == 1008


def test_expired_session_is_refused_before_accept(client, monkeypatch) -> None:
    headers = login(client)
    monkeypatch.setattr(chatroom_secure, "SESSION_SECONDS", -1)
    assert refused(client, headers) == 1008
    assert client.get("/session", headers=headers).status_code == 401


def test_foreign_origin_is_refused_with_or_without_a_session(client) -> None:
    headers = login(client)
    assert refused(client, {"origin": EVIL}) == 1008
    assert refused(client, {**headers, "origin": EVIL}) == 1008
    assert refused(client, {**headers, "origin": "http://127.0.0.1:5043"}) == 1008


def test_session_ending_while_connected_is_closed_with_4401(
    client, monkeypatch
) -> None:
    headers = login(client)
    monkeypatch.setattr(chatroom_secure, "SESSION_SECONDS", 1)
    with client.websocket_connect("/chat/main", headers=headers) as ws:
        assert closed_by_app(ws)[0] == 4401  # Nothing to hear until the end.
    assert chatroom.rooms == {}


def test_without_chat_secret_a_random_key_is_made() -> None:
    (key,) = chatroom_secure.signing_keys("")
    assert len(bytes.fromhex(key)) == 32
    assert chatroom_secure.signing_keys("") != [key]


@pytest.mark.parametrize(
    "setting", ["changeme", "ab" * 31, "zz" * 32, "ab" * 32 + " short"]
)
def test_a_weak_chat_secret_stops_the_server_saying_how_to_make_one(setting) -> None:
    with pytest.raises(SystemExit) as stopped:
        chatroom_secure.signing_keys(setting)
    assert "at least 32 random bytes" in str(stopped.value)
    assert chatroom_secure.MAKE_A_KEY in str(stopped.value)


def test_chat_secret_holds_keys_newest_first() -> None:
    new, old = "ab" * 32, "cd" * 40
    assert chatroom_secure.signing_keys(f"{new} {old}") == [new, old]


def test_responders_set_cookie_defaults_to_httponly_and_samesite_lax() -> None:
    api = responder.API(sessions=False)

    @api.route("/")
    def plain(req: responder.Request, resp: responder.Response) -> None:
        resp.set_cookie("plain", "1")

    flags = TestClient(api).get("/").headers["set-cookie"].split("; ")[1:]
    assert sorted(flags) == ["HttpOnly", "Path=/", "SameSite=lax"]


def test_starlettes_set_cookie_defaults_lack_httponly() -> None:
    response = Response()
    response.set_cookie("plain", "1")
    flags = response.headers["set-cookie"].split("; ")[1:]
    assert sorted(flags) == ["Path=/", "SameSite=lax"]


def test_itsdangerous_comes_with_responder() -> None:
    assert "itsdangerous" in metadata.requires("responder")


def test_responders_media_parses_json_whatever_the_content_type() -> None:
    api = responder.API(sessions=False)

    @api.route("/", methods=["POST"])
    async def echo(req: responder.Request, resp: responder.Response) -> None:
        resp.media = await req.media("json")

    body = b'{"name":"mallory","x":"="}'
    response = TestClient(api).post(
        "/", content=body, headers={"content-type": "text/plain"}
    )
    assert response.json() == {"name": "mallory", "x": "="}


def test_deep_nesting_makes_json_loads_raise_recursion_error() -> None:
    with pytest.raises(RecursionError):
        json.loads("[" * 5000)


def test_a_pattern_ending_in_dollar_lets_a_trailing_newline_through() -> None:
    assert re.match(r"[a-z0-9_-]{1,30}$", "ann\n")
    assert not chatroom_secure.NAME.fullmatch("ann\n")


def test_itsdangerous_timestamps_count_whole_seconds() -> None:
    signer = chatroom_secure.signer
    _, signed = signer.loads(signer.dumps("x"), return_timestamp=True)
    assert signed.microsecond == 0


def test_the_room_rules_of_chatroom_py_apply_here_too(client) -> None:
    headers = login(client)
    assert refused_by_app(client, "/chat/Not..OK", headers=headers) == 1008
    assert chatroom_secure.sockets == {}
