"""``python -m sdnb <task>``: see :mod:`sdnb.cli`."""

import sys

from .cli import main

sys.exit(main())
