"""The domain: pure functions over typed events and state. No I/O, no clock, no environment."""
