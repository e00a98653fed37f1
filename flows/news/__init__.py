"""City news in the citizen bot: «📰 News» in the menu subscribes (off by default), the
«Stop news» button under every item stops them with one tap, and a subscriber may choose
a district for urgent notices (services/news.py)."""
