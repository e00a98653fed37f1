"""The languages the platform speaks, in one list that every layer reads: the bots' texts
(flows/locales), the hotline's call scripts and NLU data, and the settings."""

from __future__ import annotations

LANGUAGES: tuple[str, ...] = ("ru", "kk", "en")
