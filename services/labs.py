"""Laboratories that push PCR results: each has an API key, stored only as a hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import asyncpg


class LabError(Exception):
    pass


@dataclass(frozen=True)
class Lab:
    id: int
    name: str


def key_hash(key: str) -> str:
    """The stored form of an API key (keys are 256-bit random: a plain hash is enough)."""
    return hashlib.sha256(key.encode()).hexdigest()


class LabService:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add(self, name: str) -> str:
        """Register a laboratory; returns its API key (the only time it is seen)."""
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise LabError("a laboratory's name is 1 to 200 characters")
        key = "lab_" + secrets.token_urlsafe(32)
        try:
            await self.pool.execute(
                "INSERT INTO labs (name, key_hash) VALUES ($1, $2)", name, key_hash(key)
            )
        except asyncpg.UniqueViolationError:
            raise LabError(f"a laboratory named {name!r} exists already") from None
        return key

    async def authenticate(self, key: str) -> Lab | None:
        """The laboratory whose key this is (keys are 256-bit random, so a hash lookup
        is safe against guessing)."""
        row = await self.pool.fetchrow(
            "SELECT id, name FROM labs WHERE key_hash = $1 AND revoked_at IS NULL", key_hash(key)
        )
        return Lab(row["id"], row["name"]) if row else None
