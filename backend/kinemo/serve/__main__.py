"""``python -m kinemo.serve``: the same as ``kinemo serve``."""
import sys

from kinemo.commands.serve import main

sys.exit(main())
