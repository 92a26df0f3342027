"""Users, password login, tokens and session tickets of the embedded gateway.

Users live in ``users.json`` in the data dir (mode 0600) with salted password hashes and token
hashes. Tickets are signed, so they survive a restart of the gateway; no secret is ever logged.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

USERS_FILE = "users.json"
CREDENTIALS_FILE = "credentials.json"
SECRET_FILE = "ticket.key"

SESSION_TIMEOUT_S = 2 * 3600.0

# User names become directory names (logs, results) and parts of job ids.
USER_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")

_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


@dataclass(frozen=True)
class Credentials:
    """A user's name with the password and token that log them in; masked in reprs."""

    user: str
    password: str | None = None
    token: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(user={self.user!r}, password=***, token=***)"

    def __iter__(self) -> Iterator[str | None]:
        return iter((self.user, self.password, self.token))


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _hash_password(password: str, salt: bytes) -> str:
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, **_SCRYPT)
    return digest.hex()


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Auth:
    """The gateway's users and sessions. Thread-safe.

    Args:
        data_dir: where ``users.json``, the ticket key and generated credentials live.
        session_timeout: seconds a ticket stays valid after its last use.
        clock: the wall clock (tests pass their own).
    """

    def __init__(
        self,
        data_dir: Path,
        session_timeout: float = SESSION_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.data_dir = data_dir
        self.session_timeout = session_timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._users: dict[str, dict[str, Any]] = {}
        self._last_access: dict[str, float] = {}
        self._revoked: set[str] = set()
        self._key = self._load_key()
        self._load_users()

    # ------------------------------------------------------------------ users

    @property
    def users_path(self) -> Path:
        return self.data_dir / USERS_FILE

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / CREDENTIALS_FILE

    def _load_key(self) -> bytes:
        path = self.data_dir / SECRET_FILE
        try:
            key = bytes.fromhex(path.read_text(encoding="utf-8").strip())
            if len(key) >= 32:
                return key
        except (OSError, ValueError):
            pass
        key = secrets.token_bytes(32)
        write_private(path, key.hex())
        return key

    def _load_users(self) -> None:
        try:
            raw = json.loads(self.users_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"cannot read the users file {self.users_path}: {exc}") from None
        users = raw.get("users", {}) if isinstance(raw, Mapping) else {}
        self._users = {str(k): dict(v) for k, v in users.items() if isinstance(v, Mapping)}

    def _save(self) -> None:
        write_private(self.users_path, json.dumps({"users": self._users}, indent=1))

    def has_users(self) -> bool:
        with self._lock:
            return bool(self._users)

    def users(self) -> list[str]:
        with self._lock:
            return sorted(self._users)

    def add_user(self, name: str, password: str | None = None, token: str | None = None) -> None:
        """Create ``name`` or update the password and token given (None keeps the old one)."""
        name = name.strip().lower()
        if not USER_NAME.match(name):
            raise ValueError(
                "a user name is letters, digits, '_', '.' or '-', starting with a letter or digit"
            )
        with self._lock:
            entry = self._users.setdefault(name, {})
            if password is not None:
                salt = secrets.token_bytes(16)
                entry["salt"] = salt.hex()
                entry["password"] = _hash_password(password, salt)
            if token is not None:
                entry["token"] = _hash_token(token)
            self._save()
        log.info("user %s saved", name)

    def check_password(self, name: str, password: str) -> str | None:
        """The (lower-cased) user name when ``password`` is theirs, else None."""
        name = name.strip().lower()
        with self._lock:
            entry = self._users.get(name)
        if not entry or "password" not in entry:
            return None
        digest = _hash_password(password, bytes.fromhex(entry["salt"]))
        return name if hmac.compare_digest(digest, entry["password"]) else None

    def check_token(self, name: str, token: str) -> str | None:
        """The user name when ``token`` is that user's token, else None."""
        name = name.strip().lower()
        with self._lock:
            entry = self._users.get(name)
        if not entry or "token" not in entry:
            return None
        return name if hmac.compare_digest(_hash_token(token), entry["token"]) else None

    # ------------------------------------------------------------------ tickets

    def issue_ticket(self, user: str) -> str:
        """A new session ticket for ``user`` (the cookie value)."""
        payload = f"{user},{int(self.clock() * 1000)},{secrets.token_hex(8)}".encode()
        sig = hmac.new(self._key, payload, hashlib.sha256).digest()[:18]
        ticket = (
            base64.urlsafe_b64encode(payload).decode()
            + "."
            + base64.urlsafe_b64encode(sig).decode()
        )
        with self._lock:
            self._last_access[ticket] = self.clock()
        return ticket

    def user_of_ticket(self, ticket: str | None) -> str | None:
        """The user a valid, unexpired ticket belongs to; refreshes its last access."""
        if not ticket or "." not in ticket or len(ticket) > 512:
            return None
        body, _, sig = ticket.partition(".")
        try:
            payload = base64.urlsafe_b64decode(body.encode())
            given = base64.urlsafe_b64decode(sig.encode())
        except (ValueError, UnicodeError):
            return None
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:18]
        if not hmac.compare_digest(given, expected):
            return None
        try:
            user, issued_ms, _nonce = payload.decode().split(",")
            issued = int(issued_ms) / 1000.0
        except ValueError:
            return None
        now = self.clock()
        with self._lock:
            if ticket in self._revoked or user not in self._users:
                return None
            last = self._last_access.get(ticket, issued)
            if now - last > self.session_timeout:
                self._last_access.pop(ticket, None)
                return None
            self._last_access[ticket] = now
        return user

    def revoke(self, ticket: str | None) -> None:
        if ticket:
            with self._lock:
                self._revoked.add(ticket)
                self._last_access.pop(ticket, None)

    # ------------------------------------------------------------------ bootstrap

    def bootstrap(self, env: Mapping[str, str] | None = None) -> Credentials:
        """Make sure the bootstrap user exists and return its credentials.

        LINKIS_USER, LINKIS_PASSWORD and LINKIS_TOKEN name them where set. Otherwise, on a first
        start, a user named after the OS user gets a random password and token, written to
        ``credentials.json`` (0600) in the data dir.
        """
        env = os.environ if env is None else env
        saved = self.read_credentials()
        name = (env.get("LINKIS_USER") or (saved.user if saved else "") or _os_user()).lower()
        env_password = env.get("LINKIS_PASSWORD") or None
        env_token = env.get("LINKIS_TOKEN") or None
        if saved is None or saved.user != name:
            saved = Credentials(name)
        password = env_password or saved.password
        token = env_token or saved.token
        with self._lock:
            exists = name in self._users
        generated = False
        if not exists:
            if password is None:
                password, generated = secrets.token_urlsafe(12), True
            if token is None:
                token, generated = secrets.token_urlsafe(24), True
            self.add_user(name, password=password, token=token)
        elif env_password or env_token:
            self.add_user(name, password=env_password, token=env_token)
        if generated:
            self._write_credentials(Credentials(name, password, token), env)
        return Credentials(name, password, token)

    def read_credentials(self) -> Credentials | None:
        """The generated bootstrap credentials stored in the data dir, if any."""
        try:
            raw = json.loads(self.credentials_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(raw, Mapping) or not raw.get("user"):
            return None
        return Credentials(str(raw["user"]), raw.get("password"), raw.get("token"))

    def _write_credentials(self, creds: Credentials, env: Mapping[str, str]) -> None:
        """Store generated secrets (never ones that came from the environment)."""
        body = {
            "user": creds.user,
            "password": None if env.get("LINKIS_PASSWORD") else creds.password,
            "token": None if env.get("LINKIS_TOKEN") else creds.token,
        }
        write_private(self.credentials_path, json.dumps(body, indent=1))


def _os_user() -> str:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = ""
    name = re.sub(r"[^a-z0-9_.\-]", "_", name.strip().lower()).lstrip("_.-")[:64]
    return name or "linkis"
