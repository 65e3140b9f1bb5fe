"""From a config to results: builder.py turns a config into objects (the composition root);
each stage is a function of a config in its own module: teacher_cache.cache_teacher,
train.run_training, evaluate.evaluate, predict.Segmenter, demo.run_demo."""
