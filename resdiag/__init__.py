"""resdiag: gradient-flow and rank-collapse diagnostics for deep networks.

Importing the package does not import torch, so `resdiag --help` stays fast;
the library modules (``resdiag.zoo``, ``resdiag.probes``, ...) import it.
"""

__version__ = "0.1.0"

from resdiag.errors import ResdiagError

__all__ = ["ResdiagError", "__version__"]
