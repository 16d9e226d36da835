"""Readers, writers, splits and generators of motion data. ``data`` never imports ``models``."""
