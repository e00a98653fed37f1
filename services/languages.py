"""The languages the platform speaks, in one list that every layer reads: the bots' texts
(presentation/locales/<lang>/, which the catalogue lint holds to this list), the hotline's
FAQ, call scripts and NLU data, the settings, and the people's stored choices (the
database checks only a code's shape: adding a language needs no migration)."""

from __future__ import annotations

LANGUAGES: tuple[str, ...] = ("ru", "kk", "en")
