"""The frozen 2D teacher: CLIP loading, prompt ensembles, dense per-pixel predictions,
pseudo labels on points and the on-disk cache (cache.py), and the pseudo labels consolidated
over neighbouring frames (temporal.py) and over objects of unlabelled points (objects.py)."""
