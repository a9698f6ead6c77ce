"""pytest runs the unit tests and, through nbval, every notebook in the `smoke` profile."""

import os

# Set before any notebook kernel starts, so the kernels inherit it. An explicit NNUTILS_PROFILE wins.
os.environ.setdefault("NNUTILS_PROFILE", "smoke")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
