"""Offline tools around the product: the simulated customer base (``tools.simulation``), the
evaluation of signals against its outcomes, ``radar simulate``, ``radar evaluate`` and
``radar demo``. Nothing in ``streams``, ``processors``, ``schemas`` or ``sinks`` imports them:
the engine and the store run without them."""
