"""citybots: the composition root (settings, CLI, wiring of pools, bots, web app)."""
