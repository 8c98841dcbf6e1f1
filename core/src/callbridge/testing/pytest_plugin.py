"""pytest plugin shipped with callbridge: fixtures for plugin authors (see docs)."""
