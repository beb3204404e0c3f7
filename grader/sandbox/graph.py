"""Notebook-mode record of the first backward pass's autograd graph (raw-tensor nets are seen through it).

Standalone on purpose: shipped as source into the sandbox (as bpg_graph) and run in the child that runs
student code; imports only the standard library, numpy and torch. Nothing here may raise into student code.

Interface used by bpg_provenance.Watch (which sees every autograd entry point of a notebook run):
    recorder = GraphRecorder(store, notes)
    state = recorder.before(what, args, kwargs)    # just before the first backward / autograd.grad runs
    recorder.after(state)                          # just after it returned (leaves' .grad are filled)
    recorder.take(namespace) -> list[dict]         # records of the cell that just ran (names resolved)
"""


class GraphRecorder:
    """Records the graph of the first autograd call of a run (filled in by the raw-tensor observation)."""

    def __init__(self, store, notes):
        self.store, self.notes, self.pending = store, notes, []

    def before(self, what: str, args: tuple, kwargs: dict):
        return None

    def after(self, state) -> None:
        return None

    def take(self, namespace: dict) -> list:
        taken, self.pending = self.pending, []
        return taken
