"""Password hashing with argon2id (argon2-cffi's recommended parameters)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified against when nobody has the login, so a wrong email costs the same time as a
# wrong password and sign-in does not reveal which accounts exist.
_UNUSED_HASH = _hasher.hash("no account has this password")

MINIMUM_PASSWORD_LENGTH = 12


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _UNUSED_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str) -> str | None:
    """What is wrong with a new password, in words a person can act on; None if it is fine."""
    if len(password) < MINIMUM_PASSWORD_LENGTH:
        return (
            f"Use at least {MINIMUM_PASSWORD_LENGTH} characters "
            "(a passphrase of a few words works well)."
        )
    if password.strip() != password:
        return "Remove the spaces at the start or end of the password."
    return None
