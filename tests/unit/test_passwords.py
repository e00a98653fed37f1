"""Panel passwords: scrypt, salted, checked in constant time, malformed hashes refused."""

import pytest

from services.panel import PanelError, check_new_user
from services.passwords import hash_password, verify_password


def test_a_password_verifies_and_a_wrong_one_does_not() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterz", stored)
    assert hash_password("correct horse battery") != stored  # salted


@pytest.mark.parametrize("stored", ["", "plain", "md5$1$2$3$4$5", "scrypt$x$8$1$AA==$AA=="])
def test_a_malformed_stored_hash_never_verifies(stored: str) -> None:
    assert not verify_password("anything at all", stored)


@pytest.mark.parametrize(
    ("username", "role", "password", "code"),
    [
        ("ab", "admin", "long enough password", "username"),
        ("Has Space", "admin", "long enough password", "username"),
        ("alice", "root", "long enough password", "role"),
        ("alice", "admin", "short", "password"),
    ],
)
def test_a_new_user_is_checked_with_a_reason(
    username: str, role: str, password: str, code: str
) -> None:
    with pytest.raises(PanelError) as raised:
        check_new_user(username, role, password)
    assert raised.value.code == code
    assert check_new_user(" Alice.Smith ", "analyst", "long enough password") == "alice.smith"
