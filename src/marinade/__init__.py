"""marinade: teach a small language model your own voice."""

__version__ = "0.1.0"
