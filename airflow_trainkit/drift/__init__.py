"""Drift checks: the settings (``config``, light) and the engine that computes them (everything else, heavy)."""
