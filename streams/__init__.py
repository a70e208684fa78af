"""Account Radar: Faust app, agents, settings, metrics and the ``radar`` command."""
