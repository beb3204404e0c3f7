"""Free-form notebooks: run observed in the sandbox, then what the student computed is found, proven and checked.

    grade.py           run a notebook observed (`run_notebook`), then check each task by its kind (`check_notebook`)
    kinds/             one module per task kind: what a notebook computed for it, and its checks
    observation.py     the observe stage for the MLP: each source's gradients on the net a notebook built
    network.py         that net, found in the run's forward calls, with autograd's gradients of it
    nets.py            which of a notebook's nets its reported values belong to
    graph.py           raw-tensor nets, seen through the autograd graph of the first backward pass
    graph_ops.py       that graph read as a net: weights, biases, layouts, the order of layers
    activations.py     the hidden activations of a student's net as it ran, proven by replaying it
    variables.py       the student's own gradients in the notebook's variables, by name then by value
    printed.py         gradients a notebook only printed, read from its cells' output
    provenance.py      whether a reported value was copied from autograd (the counterfactual run)
    precision.py       how precisely printed gradients can be read, and the full-precision value behind them
    datfile/           the .dat files students hand in, read by label (also the parser of printed output)
    saved_outputs.py   saved outputs against a fresh run, number by number
    flags.py           what a TA notices beyond right and wrong numbers, as flags for review
    notes.py           student notes about the cells of a run: each cause once, with what it cost
    outcome.py         what a run says as a whole (most cells failed, an unreadable .dat file)

The sandbox's side of a notebook run (the child that runs the cells and records them) is grader/sandbox/.
"""
