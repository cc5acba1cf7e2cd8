"""core.deferred: stand-ins load the real module at the first real use, exactly once.

A throw-away package in tmp_path plays SciPy: ``fakepkg.heavy`` counts how often each of
its modules runs, and ``fakepkg.user`` binds a name from it at import time, as
scikit-learn does with ``from scipy.stats import rankdata``.
"""

import importlib
import importlib.util
import pickle
import sys

import pytest

from churn.core import deferred

FILES = {
    "fakepkg/__init__.py": "RUNS = []\nSLOW = 0.0\n",
    "fakepkg/heavy/__init__.py": (
        "import fakepkg, time\n"
        "fakepkg.RUNS.append('heavy')\n"
        "time.sleep(fakepkg.SLOW)\n"
        "from fakepkg.heavy import sub\n"
        "__all__ = ['double', 'LIMIT']\n"
        "LIMIT = 7\n"
        "def double(x):\n"
        "    return 2 * x\n"
        "class Box:\n"
        "    size = 3\n"
        "    @staticmethod\n"
        "    def make(n):\n"
        "        return [0] * n\n"
    ),
    "fakepkg/heavy/sub.py": (
        "import fakepkg\nfakepkg.RUNS.append('sub')\ndef triple(x):\n    return 3 * x\n"
    ),
    "fakepkg/heavy/extra.py": (
        "import fakepkg\nfakepkg.RUNS.append('extra')\ndef name():\n    return 'extra'\n"
    ),
    "fakepkg/user.py": "from fakepkg.heavy import double, Box\n",
    "fakepkg/star.py": "from fakepkg.heavy import *\n",
}


@pytest.fixture
def fakepkg(tmp_path, monkeypatch):
    """The package on sys.path; afterwards its modules and the finder are gone again."""
    for rel, text in FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    pkg = importlib.import_module("fakepkg")
    yield pkg
    for name in [n for n in sys.modules if n == "fakepkg" or n.startswith("fakepkg.")]:
        del sys.modules[name]
    while deferred.FINDER in sys.meta_path:
        sys.meta_path.remove(deferred.FINDER)


def test_a_listed_name_is_bound_at_import_and_loads_the_module_at_its_first_call(fakepkg):
    deferred.defer("fakepkg.heavy", ["double", "Box"])
    user = importlib.import_module("fakepkg.user")
    assert fakepkg.RUNS == []
    assert isinstance(sys.modules["fakepkg.heavy"], deferred.Standin)
    assert repr(user.double) == "<deferred fakepkg.heavy.double>"
    assert user.double(21) == 42
    assert fakepkg.RUNS == ["heavy", "sub"]
    real = sys.modules["fakepkg.heavy"]
    assert not isinstance(real, deferred.Standin)
    assert fakepkg.heavy is real
    assert user.double.target() is real.double
    assert user.double(x=5) == 10
    assert fakepkg.RUNS == ["heavy", "sub"]  # once


def test_attributes_of_a_forwarded_name_reach_the_real_object(fakepkg):
    deferred.defer("fakepkg.heavy", ["Box"])
    box = sys.modules["fakepkg.heavy"].Box
    assert box.size == 3
    assert box.make(2) == [0, 0]
    assert fakepkg.RUNS == ["heavy", "sub"]


def test_private_names_of_a_forwarder_are_not_forwarded_and_load_nothing(fakepkg):
    deferred.defer("fakepkg.heavy", ["Box"])
    box = sys.modules["fakepkg.heavy"].Box
    with pytest.raises(AttributeError, match="_secret"):
        box._secret  # noqa: B018
    assert not hasattr(box, "__wrapped__")
    assert fakepkg.RUNS == []


def test_a_forwarder_survives_pickling(fakepkg):
    deferred.defer("fakepkg.heavy", ["double"])
    copied = pickle.loads(pickle.dumps(sys.modules["fakepkg.heavy"].double))
    assert repr(copied) == "<deferred fakepkg.heavy.double>"
    assert copied(4) == 8


def test_an_unlisted_name_loads_the_real_module_at_once(fakepkg):
    deferred.defer("fakepkg.heavy", ["double"])
    from fakepkg.heavy import LIMIT

    assert LIMIT == 7
    assert fakepkg.RUNS == ["heavy", "sub"]
    assert not isinstance(sys.modules["fakepkg.heavy"], deferred.Standin)


def test_module_attribute_access_goes_to_the_real_module(fakepkg):
    deferred.defer("fakepkg.heavy", [])
    import fakepkg.heavy

    assert fakepkg.RUNS == []  # `import` alone binds the stand-in
    assert fakepkg.heavy.double(1) == 2
    assert fakepkg.RUNS == ["heavy", "sub"]
    assert fakepkg.heavy is sys.modules["fakepkg.heavy"]


def test_a_star_import_gets_the_real_modules_names(fakepkg):
    deferred.defer("fakepkg.heavy", ["double"])
    namespace = vars(importlib.import_module("fakepkg.star"))
    assert namespace["LIMIT"] == 7
    assert namespace["double"](2) == 4
    assert "Box" not in namespace  # __all__ is the real module's


def test_a_submodule_the_real_package_imports_is_that_one_module(fakepkg):
    deferred.defer("fakepkg.heavy", [])
    import fakepkg.heavy.sub as sub

    assert fakepkg.RUNS == ["heavy", "sub"]  # the package first, the submodule once
    assert sys.modules["fakepkg.heavy.sub"] is sub
    assert sys.modules["fakepkg.heavy"].sub is sub
    assert sub.__spec__.origin.endswith("sub.py")
    assert sub.__spec__.loader is not deferred.FINDER
    assert deferred.FINDER.specs == {}  # nothing held after the import
    assert deferred.RealParentFirst().specs == {}


def test_a_submodule_the_package_does_not_import_is_imported_under_the_real_one(fakepkg):
    deferred.defer("fakepkg.heavy", [])
    from fakepkg.heavy.extra import name

    assert name() == "extra"
    assert fakepkg.RUNS == ["heavy", "sub", "extra"]
    extra = sys.modules["fakepkg.heavy.extra"]
    assert sys.modules["fakepkg.heavy"].extra is extra
    assert extra.__spec__.origin.endswith("extra.py")


def test_a_missing_submodule_of_a_stand_in_is_the_usual_error(fakepkg):
    deferred.defer("fakepkg.heavy", [])
    with pytest.raises(ModuleNotFoundError, match=r"fakepkg\.heavy\.nope"):
        importlib.import_module("fakepkg.heavy.nope")


def test_a_deferred_submodule_loads_its_deferred_package_first(fakepkg):
    deferred.defer_all({"fakepkg.heavy.sub": ["triple"], "fakepkg.heavy": ["double"]})
    assert isinstance(sys.modules["fakepkg.heavy.sub"], deferred.Standin)
    assert sys.modules["fakepkg.heavy"].sub is sys.modules["fakepkg.heavy.sub"]
    from fakepkg.heavy.sub import triple

    assert fakepkg.RUNS == []
    assert triple(3) == 9
    assert fakepkg.RUNS == ["heavy", "sub"]
    for name in ("fakepkg.heavy", "fakepkg.heavy.sub"):
        assert not isinstance(sys.modules[name], deferred.Standin)
    assert sys.modules["fakepkg.heavy"].sub is sys.modules["fakepkg.heavy.sub"]


def test_a_first_use_asks_for_the_stand_in_package_before_its_submodule(fakepkg, monkeypatch):
    """Package first, the lock order of a plain import.

    A submodule is never asked for while its package is still a stand-in: the finder
    loading the package inside the submodule's import lock deadlocked against a thread
    that was importing the package. The code before the fix fails here every time, where
    the threaded test below caught it once in many runs.
    """
    deferred.defer_all({"fakepkg.heavy": ["double"], "fakepkg.heavy.sub": ["triple"]})
    asked = []
    real_import = importlib.import_module

    def spy(name, package=None):
        asked.append((name, isinstance(sys.modules.get("fakepkg.heavy"), deferred.Standin)))
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", spy)
    assert sys.modules["fakepkg.heavy.sub"].triple(2) == 6
    # Each package on the way, in order; the stand-in taken out by undefer, then imported.
    assert asked == [("fakepkg", True), ("fakepkg.heavy", False), ("fakepkg.heavy.sub", False)]
    assert fakepkg.RUNS == ["heavy", "sub"]


def test_a_plain_module_stand_in_is_no_package_and_the_probe_loads_nothing(fakepkg):
    deferred.defer("fakepkg.heavy", [])
    deferred.defer("fakepkg.heavy.sub", [])
    standin = sys.modules["fakepkg.heavy.sub"]
    with pytest.raises(AttributeError, match="__path__"):
        standin.__path__  # noqa: B018
    # What tools ask a module for: its spec and loader, as the real module will have them.
    assert importlib.util.find_spec("fakepkg.heavy.sub") is standin.__spec__
    assert standin.__spec__.origin == standin.__file__
    assert standin.__loader__ is standin.__spec__.loader
    assert standin.__loader__.get_filename("fakepkg.heavy.sub") == standin.__file__
    assert hasattr(sys.modules["fakepkg.heavy"], "__path__")
    assert standin.__package__ == "fakepkg.heavy"
    assert sys.modules["fakepkg.heavy"].__package__ == "fakepkg.heavy"
    assert standin.__file__.endswith("sub.py")
    assert fakepkg.RUNS == []


def test_a_module_already_imported_is_left_as_it_is(fakepkg):
    real = importlib.import_module("fakepkg.heavy")
    deferred.defer("fakepkg.heavy", ["double"])
    assert sys.modules["fakepkg.heavy"] is real
    assert deferred.FINDER not in sys.meta_path


def test_a_module_that_does_not_exist_is_named(fakepkg):
    with pytest.raises(ModuleNotFoundError, match=r"'fakepkg\.ghost'") as raised:
        deferred.defer("fakepkg.ghost", [])
    assert raised.value.name == "fakepkg.ghost"
    assert "fakepkg.ghost" not in sys.modules


def test_the_finder_is_installed_once_in_front_and_ignores_other_imports(fakepkg):
    deferred.defer("fakepkg.heavy", [])
    deferred.defer("fakepkg.heavy.sub", [])
    assert sys.meta_path[0] is deferred.FINDER
    assert sys.meta_path.count(deferred.FINDER) == 1
    assert deferred.FINDER.find_spec("fakepkg.other") is None
    assert deferred.FINDER.find_spec("json") is None


def test_undefer_takes_out_the_module_its_submodules_and_the_parent_attribute(fakepkg):
    deferred.defer_all({"fakepkg.heavy": [], "fakepkg.heavy.sub": []})
    deferred.undefer("fakepkg.heavy")
    assert "fakepkg.heavy" not in sys.modules
    assert "fakepkg.heavy.sub" not in sys.modules
    assert "heavy" not in vars(fakepkg)
    assert fakepkg.RUNS == []


def test_undefer_of_a_name_without_stand_ins_changes_nothing():
    import json

    deferred.undefer("json")  # a top-level name: its parent "" is no module
    deferred.undefer("nosuchpkg.sub")  # a parent never imported
    assert sys.modules["json"] is json
    assert "nosuchpkg" not in sys.modules


def test_undefer_leaves_real_modules_and_other_stand_ins(fakepkg):
    importlib.import_module("fakepkg.heavy")
    deferred.defer("fakepkg.heavy.extra", [])
    deferred.undefer("fakepkg.heavy.sub")  # real: stays
    assert not isinstance(sys.modules["fakepkg.heavy.sub"], deferred.Standin)
    assert isinstance(sys.modules["fakepkg.heavy.extra"], deferred.Standin)
    deferred.undefer("fakepkg.heavy.extra")
    assert "fakepkg.heavy.extra" not in sys.modules
    assert "extra" not in vars(sys.modules["fakepkg.heavy"])
    assert sys.modules["fakepkg.heavy"].sub.triple(1) == 3


def test_threads_at_a_first_use_load_the_module_once_and_all_get_it(fakepkg):
    """Eight threads call one forwarder at once while the real import takes 50 ms."""
    import threading

    deferred.defer_all({"fakepkg.heavy": ["double"], "fakepkg.heavy.sub": ["triple"]})
    fakepkg.SLOW = 0.05
    double = sys.modules["fakepkg.heavy"].double
    triple = sys.modules["fakepkg.heavy.sub"].triple
    start = threading.Barrier(8)
    results: list[int] = []
    errors: list[BaseException] = []

    def call(i: int) -> None:
        start.wait(timeout=10)
        try:
            results.append(double(i) if i % 2 else triple(i))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == []
    assert sorted(results) == sorted(2 * i if i % 2 else 3 * i for i in range(8))
    # Each module ran once. Which started first is up to the threads, as without stand-ins:
    # Python imports a submodule once its package is in sys.modules, initialized or not.
    assert sorted(fakepkg.RUNS) == ["heavy", "sub"]
    assert not any(isinstance(m, deferred.Standin) for m in sys.modules.values())


def first_uses_at_once(fakepkg, threads: int = 8) -> list[BaseException]:
    """One round: each thread's first use is a forwarder of the package or its submodule."""
    import threading

    deferred.defer_all({"fakepkg.heavy": ["double"], "fakepkg.heavy.sub": ["triple"]})
    double = sys.modules["fakepkg.heavy"].double
    triple = sys.modules["fakepkg.heavy.sub"].triple
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def call(i: int) -> None:
        start.wait(timeout=10)
        try:
            assert (double(i) if i % 2 else triple(i)) == (2 * i if i % 2 else 3 * i)
        except BaseException as err:
            errors.append(err)

    workers = [threading.Thread(target=call, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=10)
    return errors


def test_first_uses_at_once_never_run_a_module_twice_nor_lose_it(fakepkg):
    """Many rounds, threads switched every microsecond, so each round's steps interleave.

    Taking a stand-in out was a test and then a delete: a thread between the two deleted
    the real module another had begun to import. The module then ran twice, or an import
    found its package gone (KeyError, a deadlock between the two imports). The code before
    the fix failed about one round in six here; 60 rounds take about a second.
    """
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(60):
            for name in [n for n in sys.modules if n.startswith("fakepkg.")]:
                del sys.modules[name]
            fakepkg.RUNS.clear()
            vars(fakepkg).pop("heavy", None)
            errors = first_uses_at_once(fakepkg)
            assert errors == []
            assert sorted(fakepkg.RUNS) == ["heavy", "sub"]
    finally:
        sys.setswitchinterval(interval)


LAZY_FILES = {
    # A package that imports a missing submodule on attribute access, as SciPy and NumPy
    # do, and a module whose import reaches another stand-in, as scipy.stats reaches
    # scipy.spatial.
    "lazypkg/__init__.py": (
        "import importlib\n"
        "def __getattr__(name):\n"
        "    return importlib.import_module(f'{__name__}.{name}')\n"
    ),
    "lazypkg/heavy.py": "from lazypkg.other import name\ndef double(x):\n    return 2 * x\n",
    "lazypkg/other.py": "def name():\n    return 'other'\n",
}


def lazy_round(double, threads: int = 4) -> tuple[bool, list[int]]:
    """Each thread's first use is ``double``: whether any hung (5 s), and what they got."""
    import threading

    start = threading.Barrier(threads)
    results: list[int] = []

    def call(i: int) -> None:
        start.wait(timeout=10)
        results.append(double(i))

    # Daemons: a hung one must not keep the test process alive.
    workers = [threading.Thread(target=call, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=5)
    return any(worker.is_alive() for worker in workers), results


def test_first_uses_under_a_lazy_package_never_hang(tmp_path, monkeypatch):
    """Taking out a stand-in never imports, so its lock never waits for an import's.

    undefer() read the parent's attribute with getattr: once another thread had deleted
    it, the package's __getattr__ imported the module, under the lock, and waited for
    that thread, which held the module's import lock and waited for this lock (its
    import reached a second stand-in). Neither ever woke: Python's import deadlock check
    does not see an RLock. The code before the fix hung in most of these rounds.
    """
    for rel, text in LAZY_FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(40):
            for name in [n for n in sys.modules if n == "lazypkg" or n.startswith("lazypkg.")]:
                del sys.modules[name]
            deferred.defer_all({"lazypkg.heavy": ["double"], "lazypkg.other": []})
            hung, results = lazy_round(sys.modules["lazypkg.heavy"].double)
            assert not hung
            assert sorted(results) == [0, 2, 4, 6]
    finally:
        sys.setswitchinterval(interval)
        for name in [n for n in sys.modules if n == "lazypkg" or n.startswith("lazypkg.")]:
            del sys.modules[name]
        while deferred.FINDER in sys.meta_path:
            sys.meta_path.remove(deferred.FINDER)
