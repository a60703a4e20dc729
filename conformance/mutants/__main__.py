"""python -m conformance.mutants: the kill table of the mutant zoo (see conformance.mutants.hunt)."""

import sys

from conformance.mutants.hunt import main

sys.exit(main())
