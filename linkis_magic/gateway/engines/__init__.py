"""Engines of the embedded gateway; each runs in an engine process of its own."""
