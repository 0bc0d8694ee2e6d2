"""pragmatiq.train."""
