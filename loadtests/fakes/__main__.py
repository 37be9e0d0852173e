"""Entry point: ``python -m loadtests.fakes {gpu,cloud} --port P ...``."""

import sys

from loadtests.fakes.cli import main

sys.exit(main())
