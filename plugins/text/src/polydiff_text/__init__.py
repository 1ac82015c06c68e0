"""polydiff text plugin: sentence encoders for prompts."""
