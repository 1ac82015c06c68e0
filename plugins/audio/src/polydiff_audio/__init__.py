"""polydiff audio plugin."""
