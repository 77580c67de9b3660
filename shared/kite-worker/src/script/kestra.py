"""Kite's stand-in for Kestra's `kestra` Python package, on the PYTHONPATH of Python
script tasks: `Kestra.outputs`, `Kestra.logger`, `Kestra.counter` and `Kestra.timer`
print Kestra's `::{...}::` lines. When the real package is installed, it is loaded
instead."""

import importlib.machinery
import importlib.util
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
_others = [p for p in sys.path if os.path.abspath(p or ".") != _here]
_spec = importlib.machinery.PathFinder.find_spec(__name__, _others)

if _spec is not None and _spec.loader is not None:
    _real = importlib.util.module_from_spec(_spec)
    sys.modules[__name__] = _real
    _spec.loader.exec_module(_real)
    globals().update(_real.__dict__)
else:
    import json
    import logging
    import time

    def _send(data):
        print("::" + json.dumps(data) + "::", flush=True)

    class _Handler(logging.Handler):
        _levels = {"WARNING": "WARN", "CRITICAL": "ERROR"}

        def emit(self, record):
            level = self._levels.get(record.levelname, record.levelname)
            _send({"logs": [{"level": level, "message": self.format(record)}]})

    class Kestra:
        _logger = None

        @staticmethod
        def outputs(map_):
            _send({"outputs": map_})

        @staticmethod
        def counter(name, value, tags=None):
            _send({"metrics": [{"name": name, "type": "counter", "value": value, "tags": tags or {}}]})

        @staticmethod
        def timer(name, duration, tags=None):
            if callable(duration):
                start = time.perf_counter()
                duration()
                duration = time.perf_counter() - start
            _send({"metrics": [{"name": name, "type": "timer", "value": duration, "tags": tags or {}}]})

        @staticmethod
        def logger():
            if Kestra._logger is None:
                logger = logging.getLogger("Kestra")
                logger.setLevel(logging.DEBUG)
                logger.addHandler(_Handler())
                logger.propagate = False
                Kestra._logger = logger
            return Kestra._logger
