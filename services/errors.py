"""The one shape of a service's refusal: an exception that names why."""

from __future__ import annotations


class Refusal(Exception):
    """A request a service refuses; ``code`` names why (the text key that explains it to
    the person, or the rule that was broken); ``message``, when given, says it in words
    (English, for the admin panel and the command line) and is the exception's text."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(code if message is None else message)
        self.code = code

    @property
    def key(self) -> str:
        """``code``, under the name of the callers that show it as a text."""
        return self.code
