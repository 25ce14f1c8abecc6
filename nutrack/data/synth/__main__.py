"""``python -m nutrack.data.synth`` (see :mod:`.cli`)."""

import sys

from .cli import main

sys.exit(main())
