"""Movement permits: officers' checks (staff bot) and a citizen's own (citizen bot)."""
