"""Domain services and storage. Knows nothing of Telegram or HTTP."""
