"""Repository-level pytest configuration for pytest-tinymodels' own test suite."""

pytest_plugins = ["pytester"]
