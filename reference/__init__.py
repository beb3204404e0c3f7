"""The mathematics of every task, and nothing about grading.

Each task has a numpy "scratch" implementation written like the chain rule on paper, a torch-autograd
twin (`reference.twins`), and a central-difference check (`reference.gradcheck`); tests hold all three
in agreement. Modules: `activations`, `mlp_regression` (task 1), `softmax_classifier` (task 2),
`dropout_training` (task 3), `autograd_graph` (task 4), `gradcheck`, `twins`. Only `twins` imports
torch; the rest are numpy-only so the grader can use them without paying torch's import.
"""
