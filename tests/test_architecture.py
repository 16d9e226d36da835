"""The package's architecture, checked: imports run one way, the maths imports nothing heavy, the CLI starts light.

Layers (a module may import its own layer and those below it, never above):

    base (errors, config, _atomic, _validation, _progress) < geometry < skeleton < kinematics, metrics < data
    < models < inference, evaluation < training, export < viz, frontends < cli
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import kinepose

SRC = Path(kinepose.__file__).parent

LAYERS = {
    "kinepose": 0,
    "kinepose.errors": 0,
    "kinepose.config": 0,
    "kinepose._atomic": 0,
    "kinepose._validation": 0,
    "kinepose._progress": 0,
    "kinepose.geometry": 1,
    "kinepose.skeleton": 2,
    "kinepose.kinematics": 3,
    "kinepose.metrics": 3,
    "kinepose.data": 4,
    "kinepose.render": 4,
    "kinepose.models": 5,
    "kinepose.inference": 6,
    "kinepose.evaluation": 6,
    "kinepose.training": 7,
    "kinepose.export": 7,
    "kinepose.viz": 8,
    "kinepose.frontends": 8,
    "kinepose.cli": 9,
}
#: Packages that must import at module level neither Lightning, matplotlib, pybullet, TensorBoard nor playwright.
LIGHT = ("kinepose.geometry", "kinepose.skeleton", "kinepose.kinematics", "kinepose.metrics", "kinepose.data")
HEAVY = ("lightning", "pytorch_lightning", "matplotlib", "pybullet", "pybullet_data", "tensorboard", "playwright")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _layer(module: str) -> int:
    best = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len)
    return LAYERS[best]


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(path: Path, module: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) of every import in a file; ``from a import b`` gives ``a.b`` when
    that is a module of ours, else ``a``. Imports under ``if TYPE_CHECKING:`` are left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: resolve against this module's package
                    pkg = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                    base = ".".join(pkg[: len(pkg) - child.level + 1] + ([base] if base else []))
                for a in child.names:
                    sub = f"{base}.{a.name}"
                    found.append((sub if sub in MODULES else base, child.lineno, top))
            inner = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            visit(child, inner)

    visit(tree, True)
    return found


GRAPH = {m: _imports(p, m) for m, p in MODULES.items()}


def test_every_module_is_in_a_layer():
    assert len(MODULES) > 50
    for m in MODULES:
        _layer(m)  # raises if a new top-level module has no layer


def test_no_import_cycle():
    """Module-level imports between kinepose modules form no cycle (implicit parent-package imports aside)."""
    edges = {m: sorted({t for t, _, top in GRAPH[m] if top and t in MODULES and t != m}) for m in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in edges[m]:
            if state.get(t) == 1:
                cycle = [*stack[stack.index(t) :], t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                dfs(t)
        stack.pop()
        state[m] = 2

    for m in MODULES:
        if m not in state:
            dfs(m)


def test_cycle_detection_finds_a_planted_cycle(tmp_path):
    """The walker is not vacuous: two files importing each other are reported."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from kinepose.errors import KineposeError\nimport kinepose.config\n")
    b.write_text("def f():\n    from kinepose.viz import report\n")
    assert [(t, top) for t, _, top in _imports(a, "x.a")] == [("kinepose.errors", True), ("kinepose.config", True)]
    assert [(t, top) for t, _, top in _imports(b, "x.b")] == [("kinepose.viz.report", False)]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_one_way(module):
    """No module imports a layer above its own, at module level or inside a function."""
    mine = _layer(module)
    bad = [
        f"line {line}: {t} (layer {_layer(t)} > {mine})"
        for t, line, _ in GRAPH[module]
        if t.split(".")[0] == "kinepose" and t in MODULES and _layer(t) > mine
    ]
    assert not bad, f"{module} imports upwards: {bad}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(LIGHT)))
def test_maths_and_data_import_nothing_heavy(module):
    bad = [f"line {line}: {t}" for t, line, top in GRAPH[module] if top and t.split(".")[0] in HEAVY]
    assert not bad, f"{module} imports heavy packages at import time: {bad}"


#: Prepended to a subprocess's code: makes the heavy packages unimportable (an ImportError naming them).
BLOCKER = textwrap.dedent(f"""
    import sys, importlib.abc
    BLOCKED = {HEAVY!r}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError("blocked for this test: " + name)
    sys.meta_path.insert(0, Block())
""")


def _run(code: str, block: bool = False) -> subprocess.CompletedProcess:
    """Run ``code`` (dedented) in a fresh interpreter, after :data:`BLOCKER` when ``block``."""
    src = (BLOCKER if block else "") + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=120)


def test_core_packages_work_without_heavy_dependencies():
    """With lightning, matplotlib, tensorboard, playwright and pybullet made unimportable, the maths and data
    packages import and compute (forward kinematics of the hand preset, a metric, a BVH round trip)."""
    r = _run(
        block=True,
        code="""
        import io, torch
        import kinepose.geometry, kinepose.skeleton, kinepose.kinematics, kinepose.metrics
        import kinepose.data, kinepose.data.formats, kinepose.data.sources, kinepose.data.datasets
        import kinepose.data.transforms, kinepose.data.motion
        from kinepose.skeleton import get_skeleton
        from kinepose.kinematics import analytic_ik, forward_kinematics
        from kinepose.metrics import mpjpe
        sk = get_skeleton("hand21")
        q = kinepose.geometry.random_quat((4, sk.num_joints), generator=torch.Generator().manual_seed(0))
        q = kinepose.kinematics.random_pose(sk, (4,), torch.Generator().manual_seed(0))
        x = forward_kinematics(sk, q, torch.zeros(4, 3, dtype=torch.float64)).positions
        ik = analytic_ik(sk, x)
        err = float(mpjpe(forward_kinematics(sk, ik.local_quat, ik.root_pos).positions, x))
        assert err < 1e-6, err  # metres
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not heavy, heavy
        print("ok", err)
    """,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok")


def test_blocker_is_not_vacuous():
    """The same blocker makes a module that does need Lightning fail to import."""
    r = _run(
        block=True,
        code="""
        import kinepose.training
    """,
    )
    assert r.returncode != 0 and "blocked for this test: lightning" in r.stderr


COMMANDS = ("train", "evaluate", "ik", "predict", "export", "plot", "report", "view", "info", "clip", "skeleton")


def test_help_imports_neither_torch_nor_lightning():
    """``kinepose --help`` and ``kinepose <cmd> --help`` for every command import no torch, lightning, numpy or
    matplotlib (one subprocess, a fresh interpreter state per command through ``sys.modules`` snapshots)."""
    r = _run(f"""
        import contextlib, io, sys
        from kinepose.cli import main
        before = set(sys.modules)
        out = {{}}
        for argv in [["--help"]] + [[c, "--help"] for c in {COMMANDS!r}]:
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
                main(argv)
            assert "usage: kinepose" in buf.getvalue(), argv
        heavy = sorted({{m.split(".")[0] for m in set(sys.modules) - before}} & {{"torch", "lightning", "numpy",
                       "matplotlib", "scipy", "yaml"}})
        print("heavy:", heavy)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "heavy: []"


def test_help_check_is_not_vacuous():
    """The same snapshot sees torch when a command really imports it."""
    r = _run("""
        import sys
        before = set(sys.modules)
        from kinepose.data.sources import load_split  # light
        import kinepose.kinematics  # imports torch
        print(sorted({m.split(".")[0] for m in set(sys.modules) - before} & {"torch"}))
    """)
    assert r.stdout.strip() == "['torch']", r.stderr
