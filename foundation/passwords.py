"""Password hashing for people's sign-in: argon2id through pwdlib, nothing hand-rolled.

A leaf module (pwdlib only). `Passwords` hashes and verifies; `verify` checks one password against
one stored hash (configuration's demo-password check). Hashes are PHC strings
(``$argon2id$v=19$m=65536,t=3,p=4$…``), so the parameters travel with each hash and a stronger
setting later re-hashes old ones at their next sign-in (`Passwords.check`).

>>> fast = Passwords(time_cost=1, memory_cost=1024, parallelism=1)   # tests only: argon2's floor
>>> stored = fast.hash("correct horse battery")
>>> fast.check("correct horse battery", stored)
(True, None)
>>> fast.check("wrong", stored)[0]
False
"""

from __future__ import annotations

from functools import cached_property

from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher

__all__ = ["Passwords", "verify"]


class Passwords:
    """Hashes and verifies passwords with argon2id (pwdlib's recommended parameters by default)."""

    def __init__(self, **argon2: int) -> None:
        self._hash = PasswordHash((Argon2Hasher(**argon2),))

    def hash(self, password: str) -> str:
        """A new salted hash of ``password``."""
        return self._hash.hash(password)

    def check(self, password: str, stored: str) -> tuple[bool, str | None]:
        """Whether ``password`` matches ``stored``, and a new hash when ``stored`` used weaker parameters.

        A stored value that is not an argon2 hash never matches (it is not an error a caller could act on).
        """
        try:
            return self._hash.verify_and_update(password, stored)
        except UnknownHashError:
            return False, None

    def burn(self, password: str) -> None:
        """Verify ``password`` against a throwaway hash: a sign-in of an unknown user name takes as long as a
        wrong password, so the answer's timing does not tell which names exist."""
        self.check(password, self._decoy)

    @cached_property
    def _decoy(self) -> str:
        return self.hash("decoy password never used")


_DEFAULT = Passwords()


def verify(password: str, stored: str) -> bool:
    """Whether ``password`` matches the argon2 hash ``stored`` (default parameters are read from the hash)."""
    return _DEFAULT.check(password, stored)[0]
