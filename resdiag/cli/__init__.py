"""The command line. Importing it as the ``resdiag`` program first makes Ctrl-C during the imports
one line and exit 130 (``resdiag.cli.process``)."""

from resdiag.cli.process import early_interrupts

early_interrupts()
