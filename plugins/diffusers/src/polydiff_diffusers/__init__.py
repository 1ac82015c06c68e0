"""polydiff-diffusers: diffusers-format model folders as polydiff image backends."""
