"""``python -m polydiff`` (and ``torchrun -m polydiff train ...``) run the CLI."""
import sys

from .cli import main

sys.exit(main())
