"""What the bots, the panel and the CLI show alike: texts, charts, scales, times."""
