"""The Keras models."""
