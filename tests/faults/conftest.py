"""The fault suites share the integration suites' fixtures (nginx, run, free_port, ...) and
helper modules (abfixture, agentfixture): this conftest loads tests/integration/conftest.py
and re-exports it, so a suite moves between the folders without changing its imports."""

import importlib.util
import os
import sys

_INTEGRATION = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration")
sys.path.insert(0, _INTEGRATION)

_spec = importlib.util.spec_from_file_location(
    "integration_conftest", os.path.join(_INTEGRATION, "conftest.py"))
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)
globals().update({k: v for k, v in vars(_shared).items() if not k.startswith("__")})
