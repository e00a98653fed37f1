"""Panel passwords: Argon2id, salted; an older scrypt hash still verifies and asks to be
replaced; weak passwords are refused by zxcvbn's estimate, not by length alone; one
maximum length for creation and login."""

import pytest
from argon2 import PasswordHasher

from services.panel import PanelError, check_new_user
from services.passwords import (
    MAX_LENGTH,
    WeakPassword,
    check_strength,
    hash_password,
    needs_rehash,
    verify_password,
)
from tests.factories import scrypt_hash


def test_a_password_is_hashed_with_argon2id_and_a_wrong_one_does_not_verify() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterz", stored)
    assert hash_password("correct horse battery") != stored  # salted
    assert not needs_rehash(stored)


def test_an_argon2_hash_of_other_parameters_verifies_and_asks_to_be_replaced() -> None:
    older = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4)
    stored = older.hash("correct horse battery")
    assert verify_password("correct horse battery", stored)
    assert needs_rehash(stored)
    assert "m=19456,t=2,p=1" in hash_password("correct horse battery")


def test_an_old_scrypt_hash_still_verifies_and_asks_to_be_replaced() -> None:
    stored = scrypt_hash("correct horse battery")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterz", stored)
    assert needs_rehash(stored)


@pytest.mark.parametrize(
    "stored", ["", "plain", "md5$1$2$3$4$5", "scrypt$x$8$1$AA==$AA==", "$argon2id$v=19$broken"]
)
def test_a_malformed_stored_hash_never_verifies(stored: str) -> None:
    assert not verify_password("anything at all", stored)


def test_a_password_beyond_the_maximum_never_verifies_even_against_its_own_hash() -> None:
    long = "correct horse battery " * 12  # 264 characters
    assert len(long) > MAX_LENGTH
    assert not verify_password(long, hash_password(long))


@pytest.mark.parametrize(
    "weak", [" " * 10, "1234567890", "password123", "qwertyuiop", "aaaaaaaaaaaa", "alice.smith1"]
)
def test_guessable_passwords_are_refused_with_a_hint(weak: str) -> None:
    with pytest.raises(WeakPassword) as raised:
        check_strength(weak, user_inputs=("alice.smith",))
    assert "guess" in str(raised.value) or "characters" in str(raised.value)


def test_a_phrase_of_unrelated_words_is_accepted() -> None:
    check_strength("correct horse battery")
    check_strength("violet tractor sings")


def test_passwords_up_to_the_maximum_are_judged_and_a_long_weak_one_refused() -> None:
    check_strength(("Zebra quartz mango " * 7)[:MAX_LENGTH])  # 128 characters
    with pytest.raises(WeakPassword):
        check_strength("x" * MAX_LENGTH)


@pytest.mark.parametrize(
    ("username", "role", "password", "code"),
    [
        ("ab", "admin", "long enough password", "username"),
        ("Has Space", "admin", "long enough password", "username"),
        ("alice", "root", "long enough password", "role"),
        ("alice", "admin", "short", "password"),
        ("alice", "admin", "1234567890", "password"),
        ("alice", "admin", " " * 10, "password"),
        ("alice", "admin", "correct horse battery " * 12, "password"),  # beyond 128
    ],
)
def test_a_new_user_is_checked_with_a_reason(
    username: str, role: str, password: str, code: str
) -> None:
    with pytest.raises(PanelError) as raised:
        check_new_user(username, role, password)
    assert raised.value.code == code
    assert check_new_user(" Alice.Smith ", "analyst", "long enough password") == "alice.smith"
