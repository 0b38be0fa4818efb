"""Access control (CONTRACT §4): roles viewer < operator < duty_officer < admin, for machines and people.

Machines present a service token (``Authorization: Bearer <token>``, configured as its SHA-256).
People sign in (liaowang.users) and present their session secret as ``Authorization: Bearer lws_…``
or as the HttpOnly cookie ``liaowang_session`` (the map's EventSource cannot send headers). A
request that changes something on the strength of the cookie alone must carry the header
``X-Liaowang-Request`` (any value): a page of another site cannot add it without a CORS preflight
Liaowang never grants, so a forged cross-site form or image cannot act for the signed-in person.

A route states what it needs as a `Requirement` dependency (``principal = Depends(auth.needs("operator"))``);
`AuthFirstRoute` checks it before FastAPI reads the request body, so a caller without the right
token learns 401 or 403 whatever it sent, and only an authorised caller is told (422) what is
wrong with its body. A token scoped to sites reads and acts on those sites only.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Coroutine

from fastapi import HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute

from foundation.config import ROLES, AuthSettings, hash_token

if TYPE_CHECKING:
    from liaowang.users import People

SESSION_COOKIE = "liaowang_session"
CSRF_HEADER = "x-liaowang-request"
"""The header a cookie-signed request must carry to change something (the CSRF guard)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a token's or a person's name, role and the sites it may see and act on (empty: all).

    A signed-in person also has a ``display_name`` and the ``session`` id (None for a service token).
    """

    name: str
    role: str
    sites: tuple[str, ...] = ()
    display_name: str = ""
    session: str | None = None

    @property
    def kind(self) -> str:
        """``user`` for a signed-in person, ``token`` for a service token (and the anonymous reader)."""
        return "user" if self.session is not None else "token"

    def may(self, role: str) -> bool:
        """Whether this principal's role is ``role`` or above."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def covers(self, site_id: str) -> bool:
        """Whether the token's site scope covers ``site_id``, for reads and writes alike.

        >>> Principal("xfhg-operator", "operator", ("LC-XFHG",)).covers("LC-LUXI")
        False
        >>> Principal("city-duty", "duty_officer").covers("LC-LUXI")
        True
        """
        return not self.sites or site_id in self.sites

    def listing(self, site_id: str | None = None) -> list[str] | None:
        """The sites a list may show: ``site_id`` when asked for and in scope (else none), otherwise the
        token's scope; None for every site.

        >>> Principal("xfhg", "viewer", ("LC-XFHG",)).listing("LC-LUXI"), Principal("city", "viewer").listing()
        ([], None)
        """
        if site_id is not None:
            return [site_id] if self.covers(site_id) else []
        return sorted(self.sites) if self.sites else None

    @property
    def scope(self) -> frozenset[str] | None:
        """The sites this principal sees, or None for every site (an unscoped token, anonymous reads)."""
        return frozenset(self.sites) if self.sites else None


ANONYMOUS = Principal("anonymous", "viewer")
METRICS = Principal("metrics", "viewer")
"""The holder of ``auth.metrics_token_sha256``: good for ``/metrics`` only."""


@dataclass(frozen=True, eq=False, slots=True)
class Requirement:
    """What a route needs from its caller; as a FastAPI dependency it gives the `Principal`.

    ``check`` raises 401 or 403. Under `AuthFirstRoute` it has already run when the dependency is
    solved, and the principal it found is reused (a token's use is audited once).
    """

    check: Callable[[Request], Principal]

    def __call__(self, request: Request) -> Principal:
        principal = getattr(request.state, "principal", None)
        return principal if principal is not None else self.check(request)


class Authenticator:
    """Resolves ``Authorization: Bearer`` headers against the configured token hashes and people's sessions,
    and the session cookie (`people`: the sessions; without it, service tokens only)."""

    def __init__(self, settings: AuthSettings, on_use: Callable[[Principal, Request], None] | None = None,
                 people: "People | None" = None) -> None:
        self._settings = settings
        self._on_use = on_use
        self.people = people

    def identify(self, request: Request) -> Principal | None:
        """The caller, or None when nothing was presented; 401 for a malformed or unknown token, or a session
        that ended (its cookie is cleared in the answer)."""
        token = self._bearer(request)
        if token is not None:
            if self.people is not None and token.startswith(_SESSION_PREFIX):
                return self._session(token, cookie=False)
            digest = hash_token(token)
            for entry in self._settings.tokens:
                if hmac.compare_digest(entry.sha256, digest):
                    return Principal(entry.name, entry.role, tuple(entry.sites))
            raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie is None or self.people is None:
            return None
        principal = self._session(cookie, cookie=True)
        if request.method not in ("GET", "HEAD", "OPTIONS") and CSRF_HEADER not in request.headers:
            raise HTTPException(403, f"a request signed by the session cookie must send the {CSRF_HEADER} header "
                                     "to change something (CSRF guard)")
        return principal

    def still_signed_in(self, principal: Principal) -> bool:
        """Whether ``principal``'s session is still live (always for a token): long streams ask now and then."""
        if principal.session is None or self.people is None:
            return True
        return self.people.alive(principal.session)

    def _session(self, secret: str, cookie: bool) -> Principal:
        assert self.people is not None
        session = self.people.resolve(secret)
        if session is None:
            headers = {"WWW-Authenticate": "Bearer", "X-Liaowang-Session": "ended"}  # pages say "signed out"
            if cookie:  # an ended session's cookie is cleared, so the next request reads as anonymous
                headers["Set-Cookie"] = f"{SESSION_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict"
            raise HTTPException(401, "the session has ended (signed out or expired): sign in again", headers=headers)
        user = session.user
        return Principal(user.name, user.role, user.sites, user.display_name, session.id)

    def require(self, request: Request, role: str, *, read: bool = False) -> Principal:
        """The caller if it holds ``role``; reads may be anonymous when ``public_read`` is on."""
        principal = self.identify(request)
        if principal is None:
            if read and self._settings.public_read:
                return ANONYMOUS
            raise HTTPException(401, "sign in, or send a bearer token", headers={"WWW-Authenticate": "Bearer"})
        if not principal.may(role):
            raise HTTPException(403, f"role {principal.role} may not do this; {role} or above is needed")
        if self._on_use is not None and request.method not in ("GET", "HEAD"):
            self._on_use(principal, request)  # every token used to change something goes to the audit trail
        return principal

    def require_metrics(self, request: Request) -> Principal:
        """The caller of ``/metrics``: anyone under ``public_read``, else the metrics token or an unscoped reader.

        The metrics are counts over the whole fleet, so a token scoped to sites may not read them (403).
        """
        if self._settings.public_read:
            return ANONYMOUS  # open like the map; the header is not even looked at, as before
        metrics_hash = self._settings.metrics_token_sha256
        token = self._bearer(request)
        if metrics_hash is not None and token is not None and hmac.compare_digest(metrics_hash, hash_token(token)):
            return METRICS
        principal = self.require(request, "viewer")
        if principal.scope is not None:
            raise HTTPException(403, f"token {principal.name} is scoped to sites; the metrics cover every site")
        return principal

    def needs(self, role: str, *, read: bool = False) -> Requirement:
        """The dependency of a route that needs ``role`` (reads: anonymous too under ``public_read``)."""
        return Requirement(lambda request: self.require(request, role, read=read))

    def needs_metrics(self) -> Requirement:
        """The dependency of ``/metrics`` (`require_metrics`)."""
        return Requirement(self.require_metrics)

    @staticmethod
    def _bearer(request: Request) -> str | None:
        header = request.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "expected 'Authorization: Bearer <token>'", headers={"WWW-Authenticate": "Bearer"})
        return token.strip()


_SESSION_PREFIX = "lws_"  # liaowang.users.SESSION_PREFIX (not imported: users imports alerting, auth stays light)


class AuthFirstRoute(APIRoute):
    """An API route that checks its `Requirement` before FastAPI reads and validates the request.

    FastAPI parses the JSON body before it solves any dependency, so without this a POST with a
    malformed body and no token would answer 422 (and say what the body should be) instead of 401.
    Set it as the router's ``route_class``; routes without a `Requirement` are left as they are.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        requirements = [d.call for d in self.dependant.dependencies if isinstance(d.call, Requirement)]
        if not requirements:
            return handler
        [requirement] = requirements

        async def authenticate_first(request: Request) -> Response:
            # in a worker thread, as FastAPI runs sync dependencies: a write's token use is audited in SQLite
            request.state.principal = await run_in_threadpool(requirement.check, request)
            return await handler(request)

        return authenticate_first
