"""The project's scripts; a package so that the tests and the other scripts import devstack as ``scripts.devstack``."""
