"""One router on a minimal FastAPI app with test tokens: how the warning, risk and incident API tests
call their routers without the whole pipeline. Token ``token-NAME`` is the entry NAME of ``tokens``."""

from __future__ import annotations

from typing import Callable

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from liaowang.auth import Authenticator
from foundation.config import AuthSettings, TokenEntry, hash_token


def bearer(name: str | None) -> dict[str, str]:
    """The header of the test token named ``name`` (none for None: an anonymous call)."""
    return {"Authorization": f"Bearer token-{name}"} if name else {}


def router_client(mount: Callable[[Authenticator], APIRouter], tokens: dict[str, tuple[str, list[str]]],
                  public_read: bool = False) -> TestClient:
    """A client of an app holding the router ``mount(auth)`` builds; ``tokens``: name → (role, sites)."""
    entries = [TokenEntry(name=name, sha256=hash_token(f"token-{name}"), role=role, sites=sites)
               for name, (role, sites) in tokens.items()]
    app = FastAPI()
    app.include_router(mount(Authenticator(AuthSettings(public_read=public_read, tokens=entries))))
    return TestClient(app)
