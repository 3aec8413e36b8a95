"""Loaded as a pytest plugin (-p tests._env) before pytest-django reads the settings, so each
test run gets its own data directory and never touches ./var."""

import os
import tempfile

os.environ.setdefault("LIANXIN_HOME", tempfile.mkdtemp(prefix="lianxin-test-"))

# Property tests explore new examples on every developer's run, but CI runs the same examples
# each time: a red CI then means the change broke something, not that a random draw was lucky.
if os.environ.get("CI") == "true":
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
    settings.load_profile("ci")
