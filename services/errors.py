"""The one shape of a service's refusal: an exception that names why."""

from __future__ import annotations


class Refusal(Exception):
    """A request a service refuses; ``code`` names why (the text key that explains it to
    the person, or the rule that was broken)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code

    @property
    def key(self) -> str:
        """``code``, under the name of the callers that show it as a text."""
        return self.code
