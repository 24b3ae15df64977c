"""Configs for the end-to-end tests.

A ResNet-20 without normalisation at a quarter width on 8x8 inputs: its gradient ratio
||dE/dx_0|| / ||dE/dx_L|| separates the residual net (about 3), its plain twin (about 6e-3) and a
10x initialisation (about 1e15), and both probes take well under a second on one core.
"""

RUN = """
batches = 2
batch_size = 8
rank_batch_size = 16
"""

GATES = """
[gates]
min_boundary_ratio = 0.05
max_boundary_ratio = 100
"""

MODEL = """
[[models]]
name = "res"
arch = "resnet20"
width = 0.25
input_shape = [3, 8, 8]
norm = "none"
"""

TINY = RUN + GATES + MODEL

# Two models, one with a dropout shortcut: the run draws random numbers beyond the init and data.
TWO_MODELS = TINY + """
[[models]]
name = "drop"
arch = "resnet8"
width = 0.25
input_shape = [3, 8, 8]
shortcut = "dropout:0.2"
"""
