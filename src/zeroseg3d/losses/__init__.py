"""Losses of the method: seen-class and pseudo-label cross-entropy, MCFA alignment."""
