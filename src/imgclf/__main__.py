"""`python -m imgclf ...` (and `torchrun ... -m imgclf train ...`): the same as the imgclf command."""
import sys

from .cli.main import main

sys.exit(main())
