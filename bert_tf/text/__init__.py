"""Text in the graph (tensorflow-text)."""
