"""Adapting at evaluation time: dynamic evaluation (rnnlm.adapt.dynamic) and the continuous cache (rnnlm.adapt.cache),
read at batch size 1 in segments (rnnlm.adapt.reading), tuned on validation text (rnnlm.adapt.search).

Takes the plain network and its tokenizer (a loaded checkpoint), never the LightningModule; eval.py reaches it
through rnnlm.run.adapted and generate.py's scoring through rnnlm.generation.run.
"""
