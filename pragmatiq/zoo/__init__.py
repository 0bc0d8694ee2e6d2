"""pragmatiq.zoo."""
