"""Laboratories that push PCR results: each has an API key, stored only as a hash."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

# key_hash is re-exported: the feeds import it from here.
from services.api_keys import add_key_holder, key_hash, key_holder

__all__ = ["Lab", "LabError", "LabService", "key_hash"]


class LabError(Exception):
    pass


@dataclass(frozen=True)
class Lab:
    id: int
    name: str


class LabService:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add(self, name: str) -> str:
        """Register a laboratory; returns its API key (the only time it is seen)."""
        return await add_key_holder(
            self.pool, "labs", "lab_", name, noun="laboratory", error=LabError
        )

    async def authenticate(self, key: str) -> Lab | None:
        """The laboratory whose key this is."""
        row = await key_holder(self.pool, "labs", key)
        return Lab(row["id"], row["name"]) if row else None
