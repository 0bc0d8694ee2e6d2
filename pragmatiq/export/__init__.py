"""pragmatiq.export."""
