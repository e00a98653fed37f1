"""Password hashing with scrypt (memory-hard, in the standard library): the stored form
is ``scrypt$n$r$p$salt$hash`` so the cost can be raised later without breaking old
hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N, _R, _P, _LENGTH = 2**14, 8, 1, 32
MIN_LENGTH = 10


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_LENGTH)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=2**26,
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


# Run against an unknown username so that a wrong name costs as long as a wrong password.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
