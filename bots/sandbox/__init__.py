"""A local server that speaks the Bot API's server side, and lets a person or a test play
the user's side. Tests and the demo use it; deployers can try every flow before Telegram."""

from bots.sandbox.server import Sandbox, default_username

__all__ = ["Sandbox", "default_username"]
