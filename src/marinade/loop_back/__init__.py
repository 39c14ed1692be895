"""The loop back: what was posted, and what others post, back into corpora and training.

`fetch.py` pulls recent public posts of an account into a corpus (`corpus fetch`);
`retrain.py` imports the model-written text that was posted or accepted and trains the
recipe again as a new run (`retrain`). The scheduler runs both on their periods.
"""
