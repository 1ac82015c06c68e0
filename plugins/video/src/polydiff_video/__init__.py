"""polydiff video plugin: short clips of coloured shapes in motion."""
