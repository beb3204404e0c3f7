"""Notebook-mode shims: what a Colab/Jupyter notebook expects around it, installed in the child only.

Standalone on purpose: shipped as source into the sandbox (as bpg_shims) with runner.py and imports only
the standard library (numpy and torch only if already imported). Installed by notebook.py before the
first cell of an observed job, never for contract jobs:

- `google.colab` (drive.mount does nothing, files.download/upload do nothing), `IPython` and
  `IPython.display` when the real ones are not installed (served by a finder at the end of sys.meta_path,
  so an installed package always wins), and `get_ipython()` / `display()` as builtins. Magics and shell
  commands reached through get_ipython() are noted and never run.
- Paths: a write to an absolute path outside the work directory (not /tmp, /dev, /proc, /sys) lands in
  the work directory under its file name; a read of such a path that does not exist reads the work
  directory's file of that name if there is one; os.makedirs/os.mkdir/os.chdir on missing such paths do
  nothing. Covers builtins.open, io.open (pathlib), numpy's loadtxt/savetxt/genfromtxt (its datasource),
  np.save/np.load and torch.save/torch.load; os.open and C code are not redirected. Each redirect is noted.
"""

import builtins
import importlib
import importlib.abc
import importlib.machinery
import io
import os
import sys

EXEMPT = ("/tmp", "/dev", "/proc", "/sys")
MAX_NOTES = 200


class Notes:
    """Student-facing notes, each once, capped; `cell` is the cell running now (1-based position)."""

    def __init__(self):
        self.cell, self.pending, self.seen, self.count = 0, [], set(), 0

    def add(self, text: str, per_cell: bool = True) -> None:
        text = f"cell {self.cell}: {text}" if per_cell and self.cell else text
        if text in self.seen:
            return
        self.seen.add(text)
        self.count += 1
        if self.count <= MAX_NOTES:
            self.pending.append(text)
        elif self.count == MAX_NOTES + 1:
            self.pending.append(f"more than {MAX_NOTES} notes; the rest were left out")

    def take(self) -> list:
        taken, self.pending = self.pending, []
        return taken


class Paths:
    """Redirects absolute paths outside the work directory into it, by file name."""

    def __init__(self, workdir: str, notes: Notes):
        self.workdir, self.notes = os.path.realpath(workdir), notes
        self.roots = (self.workdir, *EXEMPT)

    def _outside(self, file) -> str | None:
        """The path as text when it is absolute and outside the work directory and the exempt roots."""
        if isinstance(file, (int, bool)) or file is None:
            return None
        try:
            path = os.fsdecode(os.fspath(file))
        except (TypeError, ValueError):
            return None
        if not path.startswith("/"):
            return None
        normal = os.path.normpath(path)
        if any(normal == root or normal.startswith(root + "/") for root in self.roots):
            return None
        return path

    def redirect(self, file, mode="r"):
        """The file to open instead of `file` (itself unless redirected)."""
        path = self._outside(file)
        if path is None:
            return file
        name = os.path.basename(path)
        if not name or name in (".", ".."):
            return file
        target = os.path.join(self.workdir, name)
        writing = isinstance(mode, str) and any(flag in mode for flag in "wax+")
        if writing:
            self.notes.add(f"{path!r} was written as {name!r}")
            return target
        if os.path.exists(path) or not os.path.exists(target):
            return file
        self.notes.add(f"{path!r} was read from {name!r}")
        return target

    def skipped(self, what: str, file) -> bool:
        """True (and noted) when a directory operation on a missing outside path should do nothing."""
        path = self._outside(file)
        if path is None or os.path.exists(path):
            return False
        self.notes.add(
            f"{what}({path!r}) did nothing: files are read from and written to the grader's work "
            f"directory, by file name"
        )
        return True


def install_paths(paths: Paths) -> None:
    """Route the file functions notebooks use through paths.redirect."""
    real_open = io.open

    def open(file, mode="r", *args, **kwargs):
        return real_open(paths.redirect(file, mode), mode, *args, **kwargs)

    open.__doc__ = real_open.__doc__
    builtins.open = io.open = open
    real_makedirs, real_mkdir, real_chdir = os.makedirs, os.mkdir, os.chdir

    def makedirs(name, mode=0o777, exist_ok=False):
        return None if paths.skipped("os.makedirs", name) else real_makedirs(name, mode, exist_ok)

    def mkdir(path, mode=0o777, *, dir_fd=None):
        if dir_fd is None and paths.skipped("os.mkdir", path):
            return None
        return real_mkdir(path, mode, dir_fd=dir_fd)

    def chdir(path):
        return None if paths.skipped("os.chdir", path) else real_chdir(path)

    os.makedirs, os.mkdir, os.chdir = makedirs, mkdir, chdir
    datasource = sys.modules.get("numpy.lib._datasource")
    if datasource is not None:
        real_ds_open = datasource.open

        def ds_open(path, mode="r", *args, **kwargs):
            return real_ds_open(paths.redirect(path, mode), mode, *args, **kwargs)

        datasource.open = ds_open
    torch = sys.modules.get("torch")
    if torch is not None:
        real_save = torch.save

        def save(obj, f, *args, **kwargs):
            return real_save(obj, paths.redirect(f, "wb"), *args, **kwargs)

        torch.save = torch.serialization.save = save


class Shell:
    """What get_ipython() returns: magics and shell commands are noted and never run."""

    def __init__(self, notes: Notes):
        self._notes = notes
        self.user_ns: dict = {}

    def run_line_magic(self, magic_name, line="", _stack_depth=1):
        self._notes.add(f"%{magic_name} {line}".rstrip() + " was not run (magics never run here)")
        return None

    def run_cell_magic(self, magic_name, line="", cell=""):
        self._notes.add(f"%%{magic_name} {line}".rstrip() + " was not run (magics never run here)")
        return None

    def magic(self, line=""):
        name, _, rest = str(line).lstrip("%").partition(" ")
        return self.run_line_magic(name, rest)

    def system(self, cmd=""):
        self._notes.add(f"!{cmd} was not run (shell commands never run here)")
        return None

    def getoutput(self, cmd="", split=True):
        self.system(cmd)
        return []

    def __repr__(self) -> str:
        return "<grader notebook shell: magics and shell commands are not run>"


def display(*objs, **kwargs) -> None:
    """IPython's display() without a front end: print each object's repr (str for our display objects)."""
    for obj in objs:
        print(str(obj) if isinstance(obj, DisplayObject) else repr(obj))


class DisplayObject:
    """HTML, Markdown, Image, ... of IPython.display, printed as their text."""

    def __init__(self, data=None, url=None, filename=None, **kwargs):
        self.data = data if data is not None else (url or filename or "")

    def __repr__(self) -> str:
        return str(self.data)


def _ipython_display(module) -> None:
    module.display = display
    module.DisplayObject = DisplayObject
    for name in ("HTML", "Markdown", "Image", "Math", "Latex", "JSON", "Javascript", "SVG", "Pretty", "Code"):
        setattr(module, name, type(name, (DisplayObject,), {}))
    module.clear_output = lambda wait=False: None
    module.set_matplotlib_formats = lambda *args, **kwargs: None
    module.display_html = module.display_markdown = display


class ShimFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the shim modules when nothing earlier on sys.meta_path provides them."""

    def __init__(self, notes: Notes, shell: Shell):
        self.notes, self.shell = notes, shell
        self.packages = {"google", "google.colab", "IPython", "IPython.core"}
        self.builders = {
            "google": None,
            "google.colab": self._colab,
            "google.colab.drive": self._drive,
            "google.colab.files": self._files,
            "google.colab.output": self._other,
            "IPython": self._ipython,
            "IPython.display": _ipython_display,
            "IPython.core": None,
            "IPython.core.display": _ipython_display,
        }

    def find_spec(self, name, path=None, target=None):
        if name not in self.builders:
            return None
        return importlib.machinery.ModuleSpec(name, self, is_package=name in self.packages)

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        module.__grader_shim__ = True
        builder = self.builders[module.__name__]
        if builder is not None:
            builder(module)

    def _other(self, module) -> None:
        """Any other function of the module does nothing (noted)."""
        notes, prefix = self.notes, module.__name__.rsplit(".", 1)[-1]

        def __getattr__(name):
            if name.startswith("__"):
                raise AttributeError(name)

            def nothing(*args, **kwargs):
                notes.add(f"{prefix}.{name}() did nothing (Colab-only)")

            return nothing

        module.__getattr__ = __getattr__

    def _colab(self, module) -> None:
        module.drive = importlib.import_module("google.colab.drive")
        module.files = importlib.import_module("google.colab.files")
        module.output = importlib.import_module("google.colab.output")

    def _drive(self, module) -> None:
        notes = self.notes

        def mount(mountpoint="/content/drive", *args, **kwargs):
            notes.add(
                f"drive.mount({mountpoint!r}) did nothing: there is no Google Drive here; files are read "
                f"from and written to the grader's work directory, by file name"
            )
            print(f"Mounted at {mountpoint}")

        self._other(module)
        module.mount = mount

    def _files(self, module) -> None:
        notes = self.notes

        def download(filename, *args, **kwargs):
            notes.add(f"files.download({filename!r}) did nothing; the grader collects written files itself")

        def upload(*args, **kwargs):
            notes.add(
                "files.upload() did nothing: nothing can be uploaded here; hand data files in with the notebook instead"
            )
            return {}

        self._other(module)
        module.download, module.upload = download, upload

    def _ipython(self, module) -> None:
        module.get_ipython = lambda: self.shell
        module.display = importlib.import_module("IPython.display")


def install(workdir: str) -> Notes:
    """Install every shim (notebook mode only) and return the notes they write to."""
    notes = Notes()
    shell = Shell(notes)
    builtins.get_ipython = lambda: shell
    builtins.display = display
    sys.meta_path.append(ShimFinder(notes, shell))
    notes.paths = Paths(workdir, notes)  # the counterfactual run moves it to its own copy of the work directory
    install_paths(notes.paths)
    return notes
