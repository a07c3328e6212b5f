"""``python -m brainnet`` runs the command line."""

import sys

from brainnet.cli import main

sys.exit(main())
