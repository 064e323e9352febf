"""The ``rtrrl`` application: the command line, its configuration, run folders, checkpoints,
plots and the XLA:CPU thread setup.

It is built on the library (`rtrrl.cells`, `rtrrl.estimators`, `rtrrl.algorithms`,
`rtrrl.training`, ...) and the library never imports it: a program that only trains agents
needs none of this.
"""
