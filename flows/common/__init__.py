"""The flow every bot carries: /start with the bot's greeting and menu, /help,
/language, /cancel, and the catch-all that says what the bot understands."""
