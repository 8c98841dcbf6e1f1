"""Example callbridge plugin: one chat message per missed call (see README.md)."""

__version__ = "0.1.0"
