"""The parquet data contract, validation and the synthetic bank. Never imports torch."""
