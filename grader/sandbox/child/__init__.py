"""What runs inside the sandbox: the warm worker and every module of the job's child, as sources.

Nothing here is imported by the grader. process.py reads these files and sends them to the worker over
its stdin at start (worker.py, probe.py, and process.SHIPPED's modules in import order, each created as
`bpg_<name>`); they import only the standard library, numpy, torch and each other. The grader's side of
the sandbox is the folder above: it launches the worker (process.py, isolation.py), drives each job
(drive.py, channel.py) and validates everything the child sent back (wire.py, observed.py, verdict.py).

    worker.py     the warm worker: serves jobs, forks one child per job (jail.py confines it)
    probe.py      the worker's start-up check that a job's confinement works here
    jail.py       a job's confinement; fallback.py its variant without namespaces; jobsetup.py its cgroup
    phase.py      the wall and CPU time of a job's public and hidden phases
    serve.py      the child's side of the result channel: reads the job and each request, answers
    runner.py     runs the submission's cells and the requested calls; convert.py turns returns into data
    notebook.py   notebook mode: cells run observed (observe.py, names.py, graph.py, draws.py, places.py)
    provenance.py the counterfactual run that tells autograd's values from the student's
    shims.py, missing.py, gpu.py, dynamo.py, warm.py   the environment a notebook expects, and warm-ups
"""
