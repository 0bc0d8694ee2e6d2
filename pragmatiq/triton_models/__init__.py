"""pragmatiq.triton_models."""
