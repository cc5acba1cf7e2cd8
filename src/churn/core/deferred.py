"""Modules a stage imports but never uses, loaded only if something really uses them.

scikit-learn imports ``scipy.stats`` at its root (``sklearn.utils.fixes``),
``scipy.interpolate`` with its preprocessing, and ``scipy.optimize`` and
``scipy.integrate`` with its linear models and metrics, and binds a few of their names at
import time (``from scipy.stats import rankdata``); SciPy in turn loads two of NumPy's
submodules: 0.6 s of every featurize, train and evaluate process, mostly for modules none
of them uses. A stand-in takes such a module's place in ``sys.modules``. A name listed
for it becomes a forwarder that fetches the real object at its first use; any other
attribute, or any submodule, imports the real module there and then. Either way the code
that asked gets what SciPy (or NumPy) has, only later.

Later may be in another thread. First uses at once load each module once. What stays is
CPython's own: one thread's ``import scipy.stats.qmc`` while another's first use loads
``scipy.stats`` can end in Python's ``_DeadlockError``, as two threads importing a package
and its submodule for the first time can without stand-ins (the submodule's import holds
its lock while it waits for the package).
"""

import importlib
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Iterable, Mapping
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

# scikit-learn 1.9 binds these at import time: BSpline (preprocessing._polynomial),
# rankdata (metrics._ranking, model_selection._search), gmean (_loss.link), chi2
# (covariance), spearmanr (isotonic, which evaluate's calibration curve imports),
# mquantiles (inspection._partial_dependence), trapezoid (metrics._ranking),
# linear_sum_assignment (metrics.cluster), linprog (linear_model._quantile), minimize
# (calibration), and two line searches (utils.optimize, from a private module). Of
# these, train's logistic regression uses optimize and evaluate's AUC integrate (which
# imports optimize), while they work; featurize uses neither. tests/test_stage_launcher.py
# fails when a stage's import loads one of these modules after all (a new name, an
# upgrade), so the saving cannot vanish unseen.
# Two more SciPy packages, an eighth of featurize's import (0.43 of its 3.39 G
# instructions): scipy.spatial, whose ``distance`` sklearn.metrics.pairwise binds for
# distance metrics no stage computes (its own stand-in, so the binding is a module), and
# scipy.special, whose functions scikit-learn (its loss, preprocessing, splitters, a few
# estimators) and scipy.linalg bind (xlogy, boxcox, comb, ...). Featurize uses neither;
# train loads scipy.special while it fits (scipy.optimize imports scipy.fft, which uses
# it); evaluate imports it anyway, through sklearn.inspection's trees, whose Cython
# modules cimport it.
# Three of NumPy's too: SciPy's array-API layer copies every public attribute of numpy,
# and numpy imports a submodule the first time its attribute is read, so f2py (the
# Fortran wrapper generator), testing and polynomial were loaded in every stage, used
# by none.
STAGE_DEFERRED: Mapping[str, tuple[str, ...]] = {
    "numpy.f2py": (),
    "numpy.polynomial": (),
    "numpy.testing": (),
    "scipy.integrate": ("trapezoid",),
    "scipy.interpolate": ("BSpline",),
    "scipy.optimize": ("linear_sum_assignment", "linprog", "minimize"),
    "scipy.optimize._linesearch": ("line_search_wolfe2", "scalar_search_wolfe1"),
    "scipy.spatial": (),
    "scipy.spatial.distance": (),
    "scipy.special": (
        "binom",
        "boxcox",
        "comb",
        "gammainc",
        "gammaln",
        "inv_boxcox",
        "logsumexp",
        "xlogy",
    ),
    "scipy.stats": ("chi2", "gmean", "rankdata", "spearmanr"),
    "scipy.stats.mstats": ("mquantiles",),
}


class Forward:
    """A name imported from a deferred module: calls and attributes reach the real object."""

    __slots__ = ("_module", "_name")

    def __init__(self, module: str, name: str) -> None:
        self._module = module
        self._name = name

    def target(self) -> Any:
        """The real object, importing its module if it is still deferred."""
        return getattr(real_module(self._module), self._name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the real object."""
        return self.target()(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        # Reached only for names the class lacks. Private and dunder names stay here:
        # pickle and copy probe them on an instance whose slots are not yet set.
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self.target(), attr)

    def __repr__(self) -> str:
        return f"<deferred {self._module}.{self._name}>"


class Standin(ModuleType):
    """Takes a deferred module's place in ``sys.modules`` until it is really needed."""

    forwarded: frozenset[str] = frozenset()

    def __getattr__(self, attr: str) -> Any:
        if attr in self.forwarded:
            return Forward(self.__name__, attr)
        if attr == "__path__":  # the import system asking whether a module is a package
            raise AttributeError(attr)
        return getattr(real_module(self.__name__), attr)


class RealParentFirst:
    """Imports a submodule of a deferred package under the real package, never the stand-in.

    A finder on ``sys.meta_path`` and the loader of what it finds (duck-typed: the
    ``importlib.abc`` classes would cost an import of their own in every stage).

    ``import scipy.stats.qmc`` while ``scipy.stats`` is a stand-in: the real package is
    imported first (its ``__init__`` may import the submodule itself), then the
    submodule as usual, and that one module object is what the import returns.
    """

    def __init__(self) -> None:
        self.specs: dict[str, ModuleSpec | None] = {}

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> ModuleSpec | None:
        """A spec with this loader for a submodule of a stand-in; None for anything else."""
        if not isinstance(sys.modules.get(fullname.rpartition(".")[0]), Standin):
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        """The real submodule, imported under the real package."""
        real_module(spec.name.rpartition(".")[0])
        module = importlib.import_module(spec.name)
        self.specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run (it ran on import): give back the spec the import system replaced."""
        module.__spec__ = self.specs.pop(module.__name__)


FINDER = RealParentFirst()


def real_module(name: str) -> ModuleType:
    """Module ``name`` itself: imported now if only its stand-in was there.

    Each package on the way is imported before its submodule, here, not by the finder on
    the way, even when it is no stand-in (any more): two threads whose first uses reach a
    package and its submodule at once then take the import locks in one order, package
    first, as a plain import does. The other order deadlocked: one thread held the
    submodule's lock and waited for the package, whose import, in another thread, was
    importing that submodule. ``import_module`` of a module another thread is still
    initializing waits for it, as a plain import does.
    """
    parts = name.split(".")
    for depth in range(1, len(parts) + 1):
        prefix = ".".join(parts[:depth])
        if type(sys.modules.get(prefix)) is Standin:
            undefer(prefix)
        module = importlib.import_module(prefix)
    return module


# Held while stand-ins are taken out. The test and the delete are two steps, and a thread
# may run between them: without it, a second thread deleted the real module the first
# had begun to import, so the module ran twice, or an import found its package gone.
UNDEFER_LOCK = threading.RLock()


def undefer(name: str) -> None:
    """Take the stand-ins of ``name`` and its submodules out, so the next import is real.

    The submodules' too: the real package imports them and must not find a stand-in in
    their place. So goes the parent's attribute, as before any first import: the import
    system sets it to the real module once that is loaded. The attribute goes first:
    until the stand-in leaves ``sys.modules`` no import of the real module can begin, so
    what is deleted is never the real module's.
    """
    parent, _, child = name.rpartition(".")
    with UNDEFER_LOCK:
        # Nothing under the lock may import: an import waits for module locks, whose
        # holders may wait for this one, and an RLock is no lock Python's import
        # deadlock check sees. So the parent's own dict, never getattr: SciPy's and
        # NumPy's module __getattr__ import a missing submodule.
        package = sys.modules.get(parent)
        attributes = vars(package) if isinstance(package, ModuleType) else {}
        if type(attributes.get(child)) is Standin:
            delattr(package, child)
        # list() copies sys.modules in one step: another thread may be importing meanwhile.
        # The module itself goes last, so that the time between its stand-in leaving and
        # the real import taking its place is as short as it can be.
        keys = [key for key in list(sys.modules) if key.startswith(name + ".")]
        for key in [*keys, name]:
            if type(sys.modules.get(key)) is Standin:
                del sys.modules[key]


def defer(name: str, forwarded: Iterable[str]) -> None:
    """Put a stand-in for submodule ``name`` in ``sys.modules``, unless it is imported already.

    Its parent package is imported (SciPy's own ``__init__`` is light); the module is
    found on the parent's path, without being imported.
    """
    if name in sys.modules:
        return
    parent_name, _, child = name.rpartition(".")
    parent = importlib.import_module(parent_name)
    spec = importlib.machinery.PathFinder.find_spec(name, parent.__path__)
    if spec is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    standin = Standin(name)
    standin.forwarded = frozenset(forwarded)
    standin.__spec__ = spec
    standin.__loader__ = spec.loader
    standin.__file__ = spec.origin
    if spec.submodule_search_locations is None:
        standin.__package__ = parent_name
    else:
        standin.__package__ = name
        standin.__path__ = list(spec.submodule_search_locations)
    sys.modules[name] = standin
    setattr(parent, child, standin)
    if FINDER not in sys.meta_path:
        sys.meta_path.insert(0, FINDER)


def defer_all(deferred: Mapping[str, Iterable[str]]) -> None:
    """:func:`defer` each module, parents before their submodules."""
    for name in sorted(deferred):
        defer(name, deferred[name])
