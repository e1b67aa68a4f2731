"""Shared test settings: hypothesis without per-example deadlines (CI machines are shared and
slow enough that a wall-clock deadline would make correct code fail at random)."""

from hypothesis import settings

settings.register_profile("niti", deadline=None, print_blob=True)
settings.load_profile("niti")
