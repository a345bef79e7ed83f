"""Who may connect to the secure rooms, in-process."""

import chatroom
import chatroom_secure
import pytest
from starlette.testclient import TestClient
from support import closed_by_app, refused_by_app

OURS = {"origin": "http://127.0.0.1:5042"}


def signed_in(name: str = "ann") -> TestClient:
    client = TestClient(chatroom_secure.api)
    response = client.post("/login", json={"name": name})
    assert response.status_code == 200
    assert response.json() == {"name": name}
    return client


def refused(client: TestClient, headers: dict[str, str]) -> int:
    return refused_by_app(client, "/chat/main", headers=headers)


def test_signed_in_users_chat_from_our_page() -> None:
    with signed_in().websocket_connect("/chat/main", headers=OURS) as ws:
        ws.send_json({"text": "hi"})
        assert ws.receive_json() == {"type": "message", "text": "hi"}
    assert chatroom.rooms == {}


def test_a_client_without_origin_is_not_a_browser_and_may_connect() -> None:
    with signed_in().websocket_connect("/chat/main") as ws:
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}


@pytest.mark.parametrize(
    "body", [{"name": ""}, {"name": "x" * 31}, {"name": 5}, {}, [1], "ann"]
)
def test_login_wants_a_name(body) -> None:
    response = TestClient(chatroom_secure.api).post("/login", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": "a name of 1 to 30 characters, please"}
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("name", ["a", "x" * 30])
def test_login_takes_names_of_1_to_30_characters(name: str) -> None:
    signed_in(name)


def test_no_session_is_refused_before_accept() -> None:
    assert refused(TestClient(chatroom_secure.api), OURS) == 1008


def test_forged_session_is_refused_before_accept() -> None:
    client = TestClient(chatroom_secure.api)
    forged = chatroom_secure.signer.dumps("ann") + "x"
    client.cookies.set(chatroom_secure.COOKIE, forged)
    assert refused(client, OURS) == 1008


def test_expired_session_is_refused_before_accept(monkeypatch) -> None:
    client = signed_in()
    monkeypatch.setattr(chatroom_secure, "SESSION_SECONDS", -1)
    assert refused(client, OURS) == 1008


def test_foreign_origin_is_refused_with_or_without_a_session() -> None:
    assert (
        refused(TestClient(chatroom_secure.api), {"origin": "http://evil.example"})
        == 1008
    )
    assert refused(signed_in(), {"origin": "http://evil.example"}) == 1008
    assert refused(signed_in(), {"origin": "http://127.0.0.1:5043"}) == 1008


def test_session_ending_while_connected_is_closed_with_1008(monkeypatch) -> None:
    client = signed_in()
    monkeypatch.setattr(chatroom_secure, "SESSION_SECONDS", 1)
    with client.websocket_connect("/chat/main", headers=OURS) as ws:
        assert closed_by_app(ws)[0] == 1008  # Nothing to hear until the end.
    assert chatroom.rooms == {}
