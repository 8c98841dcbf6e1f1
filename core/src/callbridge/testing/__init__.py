"""Test kit for callbridge plugins (fixtures, event factory, connector test class)."""
