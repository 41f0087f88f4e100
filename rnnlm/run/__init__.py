"""Assembling and running a job: from a composed config to the objects a run needs (build), the checks that
need no data (config_checks), train() and evaluate() (train, evaluate) and what a run leaves (results).
Uses the Lightning pieces (rnnlm.training) and the process around them (rnnlm.lifecycle), never the reverse."""
