"""The five bots, the middlewares they share and the local Bot API sandbox."""
