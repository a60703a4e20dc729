import sys

sys.exit(0)  # a module that exits while it is imported: naming it must not end the run
