"""Local environment builds: a virtual environment per conda spec, cached by the spec's hash.

* ``venv``: ``VenvBuilder`` (the local EnvironmentBuilder), ``interpreter_for``, ``running_build``.
* ``folder``: a build's folder (state, request, lock, log).
* ``interpreters``: the Python interpreters a build can start from.
* ``pip``: pip's progress and failure reasons.
* ``worker``: the background process that builds (``python -m byom.core.local.builds.worker``).
"""

from .venv import VenvBuilder, interpreter_for, running_build

__all__ = ["VenvBuilder", "interpreter_for", "running_build"]
