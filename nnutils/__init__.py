"""nnutils: the helper package of the course. Each module points back to the notebook that derives it."""

__version__ = "0.1.0"
