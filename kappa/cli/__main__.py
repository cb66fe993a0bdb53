"""`python -m kappa.cli ...`: the same as the `kappa` console script."""

import sys

from kappa.cli.main import main

sys.exit(main())
