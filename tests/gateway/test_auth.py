"""Login, tokens, tickets and the users file; -1 for every unauthenticated request or frame."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_testing import V1, open_socket

from linkis_magic import protocol as p
from linkis_magic.gateway.app import GatewayServer
from linkis_magic.gateway.auth import Auth

pytestmark = pytest.mark.timeout(60)


def test_password_login_sets_the_ticket_cookie(gateway: Any) -> None:
    with httpx.Client(base_url=gateway.url + V1) as client:
        reply = client.post("/user/login", json={"userName": "Alice", "password": gateway.password})
        body = reply.json()
        assert reply.status_code == 200 and body["status"] == 0
        assert body["message"] == "login successful(登录成功)！"
        assert body["data"]["userName"] == "alice" and body["data"]["isAdmin"] is False
        cookie = reply.headers["set-cookie"]
        assert cookie.startswith(p.TICKET_COOKIE + "=") and "Path=/" in cookie
        assert client.get("/user/userInfo").json()["data"]["userName"] == "alice"

        again = client.post("/user/login", json={"userName": "alice", "password": "x"}).json()
        assert again["status"] == 0 and "already logged in" in again["message"]

        assert client.post("/user/logout").json()["status"] == 0
        assert client.get("/user/userInfo").json()["status"] == -1


def test_logout_revokes_the_ticket_everywhere(gateway: Any, login: Any) -> None:
    ticket = login(gateway.url, gateway.user, gateway.password)
    cookies = {p.TICKET_COOKIE: ticket}
    with httpx.Client(base_url=gateway.url + V1, cookies=cookies) as client:
        assert client.get("/user/heartbeat").json()["status"] == 0
        client.post("/user/logout")
    with httpx.Client(base_url=gateway.url + V1, cookies=cookies) as client:
        reply = client.get("/user/heartbeat")
        assert reply.status_code == 401 and reply.json()["status"] == -1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"userName": "alice", "password": "wrong"},
            "wrong user name or password(用户名或密码错误)！",
        ),
        (
            {"userName": "nobody", "password": "x"},
            "wrong user name or password(用户名或密码错误)！",
        ),
        ({"password": "x"}, "Username can not be empty(用户名不能为空)！"),
        ({"userName": "alice"}, "Password can not be blank(密码不能为空)！"),
    ],
)
def test_bad_logins_are_refused(gateway: Any, body: dict[str, str], message: str) -> None:
    reply = httpx.post(gateway.url + V1 + "/user/login", json=body)
    assert reply.status_code == 400
    assert reply.json()["status"] == 1 and reply.json()["message"] == message
    assert p.TICKET_COOKIE not in reply.headers.get("set-cookie", "")


def test_token_headers_and_token_login(gateway: Any) -> None:
    headers = {p.TOKEN_USER_HEADER: gateway.user, p.TOKEN_CODE_HEADER: gateway.token}
    reply = httpx.get(gateway.url + V1 + "/user/userInfo", headers=headers)
    assert reply.json()["data"]["userName"] == "alice"

    bad = {p.TOKEN_USER_HEADER: gateway.user, p.TOKEN_CODE_HEADER: "wrong"}
    assert httpx.get(gateway.url + V1 + "/user/userInfo", headers=bad).status_code == 401

    with httpx.Client(base_url=gateway.url + V1) as client:
        reply = client.post("/user/token-login", headers=headers)
        assert reply.json()["status"] == 0 and reply.json()["data"]["userName"] == "alice"
        assert client.cookies[p.TICKET_COOKIE]
        assert client.post("/user/token-login", headers=bad).json()["status"] == 1


def test_rest_without_login_is_minus_one(gateway: Any) -> None:
    for path in ("/entrance/x/status", "/jobhistory/1/get", "/filesystem/openFile?path=/etc"):
        reply = httpx.get(gateway.url + V1 + path)
        assert reply.status_code == 401 and reply.json()["status"] == -1, path
    reply = httpx.post(gateway.url + V1 + "/entrance/submit", json={})
    assert reply.status_code == 401
    forged = {p.TICKET_COOKIE: "YWxpY2UsMSwx.AAAA"}
    assert httpx.get(gateway.url + V1 + "/user/userInfo", cookies=forged).status_code == 401


async def test_socket_frames_without_login_get_minus_one_with_the_tag(gateway: Any) -> None:
    for path in (p.WS_PATH, p.WS_PATH_DOCUMENTED):
        sock = await open_socket(f"ws://127.0.0.1:{gateway.port}{path}", "not-a-ticket")
        try:
            await sock.send(p.build_execute_frame("print(1)", "python", "python", tag="t-1"))
            reply = await sock.recv()
            assert reply["status"] == -1 and reply["method"] == p.EXECUTE_METHOD
            assert reply["data"] == {"websocketTag": "t-1"}
            assert (
                reply["message"]
                == "You are not logged in, please login first!(您尚未登录，请先登录!)"
            )
        finally:
            await sock.conn.close()


async def test_socket_upgrade_with_token_headers(gateway: Any) -> None:
    headers = {p.TOKEN_USER_HEADER: gateway.user, p.TOKEN_CODE_HEADER: gateway.token}
    sock = await open_socket(gateway.ws_url, None, **headers)
    try:
        _e, task_id = await sock.execute("print('token socket')")
        assert await sock.wait_status(task_id) == "Succeed"
    finally:
        await sock.conn.close()


def test_users_file_is_private_and_holds_no_secrets(gateway: Any) -> None:
    users = gateway.data_dir / "users.json"
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    text = users.read_text()
    assert gateway.password not in text and gateway.token not in text
    assert "alice" in json.loads(text)["users"]


def test_bootstrap_user_from_the_environment(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("LINKIS_USER", "carol")
    monkeypatch.setenv("LINKIS_PASSWORD", "carol-pw")
    monkeypatch.setenv("LINKIS_TOKEN", "carol-token")
    server = GatewayServer(data_dir=tmp_path)
    assert tuple(server.credentials) == ("carol", "carol-pw", "carol-token")
    assert "carol-pw" not in repr(server.credentials)
    assert server.auth.check_password("carol", "carol-pw") == "carol"
    assert server.auth.check_token("carol", "carol-token") == "carol"
    assert not server.auth.credentials_path.exists()


def test_generated_bootstrap_user_is_kept_in_a_private_file(
    tmp_path: Path, monkeypatch: Any
) -> None:
    for name in ("LINKIS_USER", "LINKIS_PASSWORD", "LINKIS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    first = GatewayServer(data_dir=tmp_path).credentials
    assert first.user and first.password and first.token
    path = tmp_path / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = GatewayServer(data_dir=tmp_path).credentials
    assert tuple(again) == tuple(first)
    assert again.password is not None
    assert GatewayServer(data_dir=tmp_path).auth.check_password(first.user, again.password)


def test_user_names_that_would_escape_their_directories_are_refused(tmp_path: Path) -> None:
    server = GatewayServer(data_dir=tmp_path)
    for bad in ("../x", "a/b", "", ".hidden", "a,b", "x" * 65):
        with pytest.raises(ValueError):
            server.auth.add_user(bad, password="pw")
    server.auth.add_user("Dot.Dash-Under_1", password="pw")
    assert server.auth.check_password("dot.dash-under_1", "pw") == "dot.dash-under_1"


def test_tickets_expire_after_the_session_timeout(tmp_path: Path) -> None:
    now = [1_000_000.0]
    auth = Auth(tmp_path, session_timeout=60, clock=lambda: now[0])
    auth.add_user("dave", password="pw")
    ticket = auth.issue_ticket("dave")
    now[0] += 50
    assert auth.user_of_ticket(ticket) == "dave"
    now[0] += 50
    assert auth.user_of_ticket(ticket) == "dave", "each use renews the session"
    now[0] += 61
    assert auth.user_of_ticket(ticket) is None
    assert auth.user_of_ticket(auth.issue_ticket("dave")[:-2] + "xx") is None
    assert auth.user_of_ticket("garbage") is None


async def test_pages_of_other_origins_are_refused(gateway: Any, alice_ticket: str) -> None:
    from websockets.exceptions import InvalidStatus

    evil = {"Origin": "http://127.0.0.1:8888"}
    reply = httpx.post(
        gateway.url + V1 + "/entrance/submit",
        content=b"{}",
        headers={**evil, "Content-Type": "text/plain"},
        cookies={p.TICKET_COOKIE: alice_ticket},
    )
    assert reply.status_code == 403 and reply.json()["status"] == 3
    with pytest.raises(InvalidStatus):
        await open_socket(gateway.ws_url, alice_ticket, **evil)
    own = {"Origin": f"http://127.0.0.1:{gateway.port}"}
    assert httpx.get(gateway.url + V1 + "/gateway/heartbeat", headers=own).status_code == 200
    sock = await open_socket(gateway.ws_url, alice_ticket, **own)
    await sock.conn.close()
    login = httpx.post(
        gateway.url + V1 + "/user/login",
        json={"userName": gateway.user, "password": gateway.password},
    )
    assert "samesite=strict" in login.headers["set-cookie"].lower()
