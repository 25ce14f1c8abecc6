"""``python -m nutrack.train`` (see :mod:`nutrack.train`)."""
import sys

from nutrack.train.cli import main

if __name__ == "__main__":
    sys.exit(main())
