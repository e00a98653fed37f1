"""Panel passwords: hashed with Argon2id (argon2-cffi, at OWASP's recommended minimum),
judged at creation by a strength estimator (zxcvbn), one maximum length for creation
and login.

Hashes stored before Argon2 (``scrypt$n$r$p$salt$hash``) still verify, and
``needs_rehash`` says to replace them (and Argon2 hashes of older parameters) at the
next good login."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

MIN_LENGTH = 10
# The same bound at creation and at login: a longer password is refused at creation and
# never compared at login (an Argon2 hash of a megabyte costs the server, not the caller).
MAX_LENGTH = 128
MIN_SCORE = 3  # zxcvbn's "safely unguessable: moderate protection from offline attacks"

# OWASP's Password Storage Cheat Sheet: Argon2id, 19 MiB, 2 iterations, 1 lane. About 30 ms
# a login on an idle core here (90 ms at a load of 7 on 2 cores), where argon2-cffi's
# default (64 MiB, 3 iterations, 4 lanes) took 580 ms and all the cores: a login is also
# what a stranger can make the server do.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# zxcvbn refuses longer input (its cost grows faster than the length): the first 72
# characters are judged, and a password whose first 72 are strong is strong.
_JUDGED = 72


class WeakPassword(ValueError):
    """A password refused at creation; the message says why, in a sentence."""


def check_strength(password: str, *, user_inputs: tuple[str, ...] = ()) -> None:
    """Raise WeakPassword unless the password is 10 to 128 characters and zxcvbn scores
    it 3 or more (``user_inputs``, such as the username, count as guessable)."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_LENGTH} characters")
    verdict = zxcvbn(password[:_JUDGED], user_inputs=[u[:_JUDGED] for u in user_inputs if u])
    if verdict["score"] < MIN_SCORE:
        feedback = verdict["feedback"]
        hint = " ".join(
            part.rstrip(".") + "."
            for part in [feedback.get("warning") or "", *feedback.get("suggestions", [])]
            if part
        )
        raise WeakPassword(
            "this password is too easy to guess"
            + (f" ({hint})" if hint else "")
            + "; use a longer phrase of unrelated words"
        )


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored`` (Argon2, or an older scrypt hash); a
    password beyond MAX_LENGTH never matches."""
    if len(password) > MAX_LENGTH:
        return False
    if stored.startswith("$argon2"):
        try:
            return _HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    return _verify_scrypt(password, stored)


def needs_rehash(stored: str) -> bool:
    """True for a hash to replace at the next good login: scrypt, or Argon2 of other
    parameters than today's."""
    if not stored.startswith("$argon2"):
        return True
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def _verify_scrypt(password: str, stored: str) -> bool:
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
