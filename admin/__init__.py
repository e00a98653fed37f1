"""The admin web app: health, metrics and (in later issues) the panel."""
