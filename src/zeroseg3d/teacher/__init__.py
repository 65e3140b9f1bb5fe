"""The frozen 2D teacher: CLIP loading, prompt ensembles, dense per-pixel predictions,
pseudo labels on points, and the on-disk cache."""
