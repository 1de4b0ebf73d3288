"""Root conftest: pytest requires ``pytest_plugins`` here, not in a sub-directory's conftest.

``pytester`` is how the plugin's own tests run small test files (tests/plugin/).
"""

pytest_plugins = ["pytester"]
