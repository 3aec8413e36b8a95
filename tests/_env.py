"""Loaded as a pytest plugin (-p tests._env) before pytest-django reads the settings, so each
test run gets its own data directory and never touches ./var."""

import os
import tempfile

os.environ.setdefault("LIANXIN_HOME", tempfile.mkdtemp(prefix="lianxin-test-"))
