"""The people API (docs/contract.md §6 "People"): sign-in, sign-out, one's own password, and user admin.

`people_router` builds an `APIRouter` for `liaowang.api.create_app` to mount. Sign-in
(``POST /api/v1/session``) is open to anyone; it answers with an HttpOnly ``SameSite=Strict``
cookie for pages, or with the session secret in the body when asked (``"bearer": true``) for
scripts. Every other route names what it needs (`Authenticator.needs`) and is checked before its
body is read (`AuthFirstRoute`). Managing users needs an admin of every site (a site-scoped admin
could otherwise hand out access to the sites it does not hold).

Errors: 401 wrong name or password (never says which), 403 a disabled user with the right password,
429 a locked name or address (``Retry-After``), 404 unknown user, 409 the name is taken or the
change would leave no admin, 422 bad input (unknown role or site, a short password), 503 alerts.db
cannot write now.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from liaowang.auth import SESSION_COOKIE, AuthFirstRoute, Authenticator, Principal
from foundation.config import ROLES, Fleet
from foundation.domain import iso
from liaowang.users import (LastAdmin, People, Session, SignInRefused, UserError, UserExists, UserNotFound)

__all__ = ["people_router"]

API = "/api/v1"
Role = Literal[ROLES]  # type: ignore[valid-type]
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$"


class SignInBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    bearer: bool = Field(default=False, description=(
        "answer with the session secret in the body (for Authorization: Bearer) instead of the cookie"))


class OwnPasswordBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current: str = Field(min_length=1, max_length=256)
    new: str = Field(min_length=1, max_length=256)


class NewUserBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME, description="the sign-in name: letters, digits, . _ -")
    display_name: str = Field(min_length=1, max_length=64, description="shown on every page and in the records")
    role: Role
    sites: list[str] = Field(default=[], max_length=200, description="the sites this user sees and acts on; [] all")
    password: str = Field(min_length=1, max_length=256)


class UserChangeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(default=None, min_length=1, max_length=64)
    role: Role | None = None
    sites: list[str] | None = Field(default=None, max_length=200)
    disabled: bool | None = Field(default=None, description="true ends the user's sessions and refuses sign-in")


class PasswordBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=1, max_length=256)


def people_router(people: People, auth: Authenticator, fleet: Fleet) -> APIRouter:
    """The ``/api/v1/session`` and ``/api/v1/users`` routes over ``people``.

    Mount with ``app.include_router(people_router(people, auth, pipeline.fleet))``; ``auth`` must resolve
    sessions through the same ``people`` (``Authenticator(…, people=people)``).
    """
    router = APIRouter(prefix=API, route_class=AuthFirstRoute, tags=["people"])
    signed_in = auth.needs("viewer")
    admin = auth.needs("admin")
    cookie_secure = people.cookie_secure  # None: Secure when the sign-in came over https

    def _session_json(principal: Principal, session: Session | None) -> dict[str, Any]:
        out: dict[str, Any] = {"name": principal.name, "display_name": principal.display_name or principal.name,
                               "role": principal.role, "sites": list(principal.sites), "kind": principal.kind}
        if session is not None:
            out.update(expires_at=iso(session.expires_at), absolute_expires_at=iso(session.absolute_expires_at),
                       idle_s=people.idle_s)
        return out

    def _run(step):
        try:
            return step()
        except UserNotFound as err:
            raise HTTPException(404, str(err)) from None
        except (UserExists, LastAdmin) as err:
            raise HTTPException(409, str(err)) from None
        except UserError as err:
            raise HTTPException(422, str(err)) from None
        except sqlite3.Error as err:
            raise HTTPException(503, f"the user store cannot write now: {err}") from None

    def _known_sites(sites: list[str] | None) -> tuple[str, ...] | None:
        if sites is None:
            return None
        unknown = sorted(set(sites) - set(fleet.sites))
        if unknown:
            raise HTTPException(422, f"unknown site {unknown[0]}")
        return tuple(dict.fromkeys(sites))

    def _every_site(principal: Principal) -> None:
        if principal.scope is not None:
            raise HTTPException(403, f"{principal.name} is scoped to sites; users are managed by an admin of every site")

    # ------------------------------------------------------------------ one's own session

    @router.post("/session")
    def sign_in(body: SignInBody, request: Request, response: Response) -> dict[str, Any]:
        """Sign in with a user name and password (people; machines use service tokens).

        Sets the HttpOnly cookie ``liaowang_session``, or with ``"bearer": true`` returns ``token`` instead.
        401 wrong name or password, 403 disabled, 429 too many failures (Retry-After).
        """
        address = request.client.host if request.client else None
        try:
            secret, session = people.sign_in(body.name, body.password, address)
        except SignInRefused as refused:
            if refused.reason == "locked":
                raise HTTPException(429, "too many failed sign-ins: try again later", headers={
                    "Retry-After": str(math.ceil(refused.retry_after))}) from None
            if refused.reason == "disabled":
                raise HTTPException(403, "this user is disabled: ask the bureau's admin") from None
            raise HTTPException(401, "wrong user name or password") from None
        except sqlite3.Error as err:
            raise HTTPException(503, f"the user store cannot write now: {err}") from None
        user = session.user
        principal = Principal(user.name, user.role, user.sites, user.display_name, session.id)
        out = _session_json(principal, session)
        if body.bearer:
            out["token"] = secret
        else:
            secure = cookie_secure if cookie_secure is not None else request.url.scheme == "https"
            response.set_cookie(SESSION_COOKIE, secret, max_age=int(people.absolute_s), path="/", httponly=True,
                                samesite="strict", secure=secure)
        return out

    @router.get("/session")
    def current_session(principal: Principal = Depends(signed_in)) -> dict[str, Any]:
        """Who is signed in: name, display name, role, sites, ``kind`` (user or token) and, for a person, when
        the session ends unless used (``expires_at``) and at the latest (``absolute_expires_at``)."""
        return _session_json(principal, people.session(principal.session) if principal.session else None)

    @router.delete("/session")
    def sign_out(response: Response, principal: Principal = Depends(signed_in)) -> dict[str, Any]:
        """Sign out: the session ends at once (its secret and cookie are good for nothing after). 400 for a token."""
        if principal.session is None:
            raise HTTPException(400, "a service token has no session to end")
        _run(lambda: people.sign_out(principal.session, principal.name))
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return {"signed_out": True, "name": principal.name}

    @router.post("/session/password")
    def change_own_password(body: OwnPasswordBody, principal: Principal = Depends(signed_in)) -> dict[str, Any]:
        """Change one's own password (the current one is asked again); one's other sessions end."""
        if principal.session is None:
            raise HTTPException(400, "a service token has no password; people change theirs here")
        try:
            _run(lambda: people.change_own_password(principal.name, body.current, body.new, principal.session))
        except SignInRefused:
            raise HTTPException(403, "the current password is wrong") from None
        return {"changed": True, "name": principal.name}

    # ------------------------------------------------------------------ admin

    @router.get("/users")
    def list_users(principal: Principal = Depends(admin)) -> list[dict[str, Any]]:
        """Every user (never a password hash); admin of every site."""
        _every_site(principal)
        return [u.to_json() for u in people.users()]

    @router.post("/users", status_code=201)
    def add_user(body: NewUserBody, principal: Principal = Depends(admin)) -> dict[str, Any]:
        """Create a user with a first password; admin of every site. 409 if the name is taken."""
        _every_site(principal)
        sites = _known_sites(body.sites) or ()
        return _run(lambda: people.add(body.name, body.display_name, body.role, sites, body.password,
                                       by=principal.name)).to_json()

    @router.get("/users/{name}")
    def get_user(name: str, principal: Principal = Depends(admin)) -> dict[str, Any]:
        """One user; admin of every site."""
        _every_site(principal)
        return _run(lambda: people.get(name)).to_json()

    @router.patch("/users/{name}")
    def change_user(name: str, body: UserChangeBody, principal: Principal = Depends(admin)) -> dict[str, Any]:
        """Change a user's display name, role, sites or disabled flag (disabling ends their sessions); admin of
        every site. 409 if no enabled admin of every site would be left."""
        _every_site(principal)
        sites = _known_sites(body.sites)
        return _run(lambda: people.change(name, principal.name, display_name=body.display_name, role=body.role,
                                          sites=sites, disabled=body.disabled)).to_json()

    @router.post("/users/{name}/password")
    def reset_password(name: str, body: PasswordBody, principal: Principal = Depends(admin)) -> dict[str, Any]:
        """Set a user's password (they forgot it); their sessions end. Admin of every site."""
        _every_site(principal)
        _run(lambda: people.set_password(name, body.password, by=principal.name))
        return {"reset": True, "name": name}

    return router

