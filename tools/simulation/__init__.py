"""A seeded, deterministic B2B customer base behaving the way the retention playbook describes.

``radar simulate`` writes what this package generates; nothing here touches a file, the clock
or the environment. The world is planned up front per account (``world``, ``plans``), then
lived one day at a time (``behaviour``), and the day's events pass through realistic noise
(``noise``: late arrivals, malformed lines) on their way out (``run``).

Every random choice comes from a ``random.Random`` derived from the seed and the account, so an
account behaves the same whatever else is in the world, and the same arguments always give the
same output.
"""

from tools.simulation.run import DayOutput, SimConfig, Simulation

__all__ = ["DayOutput", "SimConfig", "Simulation"]
