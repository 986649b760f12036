"""sdmodel: stock-flow-consistent system-dynamics models, checked, compiled and batched."""
__version__ = "0.1.0"
