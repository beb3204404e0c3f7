"""backprop-grader: grading harness for backpropagation assignments.

`grader` knows grading and nothing about the mathematics beyond calling `reference`.
"""

__version__ = "0.1.0"
