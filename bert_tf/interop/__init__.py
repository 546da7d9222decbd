"""Exports and conversions."""
