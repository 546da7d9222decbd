"""Text to records, TF-free."""
