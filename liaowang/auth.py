"""Bearer-token access control (CONTRACT §4): roles viewer < operator < duty_officer < admin."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Callable

from fastapi import HTTPException, Request

from liaowang.config import ROLES, AuthSettings, hash_token


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's name, role and the sites it may act on (empty: all)."""

    name: str
    role: str
    sites: tuple[str, ...] = ()

    def may(self, role: str) -> bool:
        """Whether this principal's role is ``role`` or above."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def may_act_on(self, site_id: str) -> bool:
        """Whether the token's site scope covers ``site_id``."""
        return not self.sites or site_id in self.sites


ANONYMOUS = Principal("anonymous", "viewer")


class Authenticator:
    """Resolves ``Authorization: Bearer`` headers against the configured token hashes."""

    def __init__(self, settings: AuthSettings, on_use: Callable[[Principal, Request], None] | None = None) -> None:
        self._settings = settings
        self._on_use = on_use

    def identify(self, request: Request) -> Principal | None:
        """The caller, or None when no token was sent; 401 for a malformed or unknown token."""
        header = request.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "expected 'Authorization: Bearer <token>'", headers={"WWW-Authenticate": "Bearer"})
        digest = hash_token(token.strip())
        for entry in self._settings.tokens:
            if hmac.compare_digest(entry.sha256, digest):
                return Principal(entry.name, entry.role, tuple(entry.sites))
        raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})

    def require(self, request: Request, role: str, *, read: bool = False) -> Principal:
        """The caller if it holds ``role``; reads may be anonymous when ``public_read`` is on."""
        principal = self.identify(request)
        if principal is None:
            if read and self._settings.public_read:
                return ANONYMOUS
            raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        if not principal.may(role):
            raise HTTPException(403, f"role {principal.role} may not do this; {role} or above is needed")
        if self._on_use is not None and request.method not in ("GET", "HEAD"):
            self._on_use(principal, request)  # every token used to change something goes to the audit trail
        return principal
