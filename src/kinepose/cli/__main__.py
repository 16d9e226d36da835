"""``python -m kinepose.cli``."""

import sys

from kinepose.cli import main

sys.exit(main())
