"""polydiff image plugin."""
