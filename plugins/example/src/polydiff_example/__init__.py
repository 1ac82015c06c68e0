"""Example polydiff plugin."""
