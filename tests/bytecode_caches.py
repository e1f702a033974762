"""A pytest plugin loaded before any other (``-p tests.bytecode_caches`` in ``addopts``,
pyproject.toml): bytecode caches are written even where ``PYTHONDONTWRITEBYTECODE`` is set, as
it is on the CI machine.

Without them each xdist worker compiles every test module and the package again, and so does
each Python subprocess the tests start (``aggregator api``, ``aggregator worker``, parse
workers, scripts); and pytest rewrites the assertions of its plugins' modules (hypothesis,
schemathesis, ...) from source in every process, because those are imported before
``conftest.py`` (0.8 s of each pytest start on the CI machine). The caches go where Python
puts them (``__pycache__``, ignored by git); subprocesses read them even under the variable.
The module is found through the project root, which the editable install puts on
``sys.path``.
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = False
