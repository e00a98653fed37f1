"""A password stored as scrypt before Argon2 logs in and is hashed again with Argon2id at
that login; a wrong password leaves it as it was; a password past the maximum length
never logs in (it cannot have been stored)."""

from __future__ import annotations

import secrets

import pytest

from citybots.wiring import Services
from services.panel import PanelError
from tests.factories import scrypt_hash

PASSWORD = "correct horse battery"


async def _stored(services: Services, name: str) -> str:
    stored: str = await services.panel.pool.fetchval(
        "SELECT password_hash FROM panel_users WHERE username = $1", name
    )
    return stored


async def test_a_scrypt_password_is_rehashed_with_argon2id_at_the_next_login(
    services: Services,
) -> None:
    name = f"rehash-{secrets.token_hex(3)}"
    await services.panel.create_user(name, "analyst", PASSWORD, actor="test")
    assert (await _stored(services, name)).startswith("$argon2id$")
    old = scrypt_hash(PASSWORD)
    await services.panel.pool.execute(
        "UPDATE panel_users SET password_hash = $2 WHERE username = $1", name, old
    )
    with pytest.raises(PanelError):
        await services.panel.log_in(name, PASSWORD + "!", client="test")
    assert await _stored(services, name) == old  # a wrong password changes nothing
    await services.panel.log_in(name, PASSWORD, client="test")
    new = await _stored(services, name)
    assert new.startswith("$argon2id$")
    await services.panel.log_in(name, PASSWORD, client="test")  # and it still logs in
    assert await _stored(services, name) == new


async def test_a_password_beyond_the_maximum_is_refused_at_creation_and_at_login(
    services: Services,
) -> None:
    name = f"long-{secrets.token_hex(3)}"
    long = "correct horse battery " * 12
    with pytest.raises(PanelError) as raised:
        await services.panel.create_user(name, "analyst", long, actor="test")
    assert raised.value.code == "password"
    await services.panel.create_user(name, "analyst", PASSWORD, actor="test")
    with pytest.raises(PanelError):
        await services.panel.log_in(name, PASSWORD + " " * 200, client="test")
