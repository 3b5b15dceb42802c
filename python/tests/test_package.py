"""The package as a whole: what Python it needs, what it does to logging, what it exports."""

import ast
import importlib.util
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import strands_backend

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()
# The repository's examples run on the same Pythons as the package.
EXAMPLES = sorted((PACKAGE_ROOT.parent / "examples").rglob("*.py"))
SOURCES = sorted((PACKAGE_ROOT / "strands_backend").glob("*.py")) + sorted((PACKAGE_ROOT / "tests").rglob("*.py")) + EXAMPLES

# Standard-library names newer than Python 3.9, by module ("" for builtins).
NEWER_THAN_39 = {
    "": {"aiter", "anext", "ExceptionGroup", "BaseExceptionGroup", "EncodingWarning"},
    "asyncio": {"timeout", "timeout_at", "TaskGroup", "Runner", "Barrier", "QueueShutDown"},
    "contextlib": {"aclosing", "chdir"},
    "itertools": {"pairwise", "batched"},
    "typing": {"ParamSpec", "TypeAlias", "Self", "Concatenate", "TypeGuard", "Never", "LiteralString", "Required", "NotRequired",
               "Unpack", "TypeVarTuple", "override", "assert_never", "reveal_type", "is_typeddict", "dataclass_transform"},
    "enum": {"StrEnum", "verify", "member", "nonmember"},
    "datetime": {"UTC"},
    "sys": {"exception"},
    "hashlib": {"file_digest"},
    "dataclasses": {"KW_ONLY"},
}
NEWER_MODULES = {"tomllib", "wsgiref.types"}
NEWER_KEYWORDS = {"zip": {"strict"}, "dataclass": {"slots", "kw_only", "match_args"}}


def uses_of_newer_api(tree: ast.AST) -> list:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name in NEWER_MODULES]
        elif isinstance(node, ast.ImportFrom):
            if node.module in NEWER_MODULES:
                found.append(node.module)
            found += [f"{node.module}.{a.name}" for a in node.names if a.name in NEWER_THAN_39.get(node.module or "", ())]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr in NEWER_THAN_39.get(node.value.id, ()):
            found.append(f"{node.value.id}.{node.attr}")
        elif isinstance(node, ast.Name) and node.id in NEWER_THAN_39[""]:
            found.append(node.id)
        elif isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            found += [f"{name}({k.arg}=)" for k in node.keywords if k.arg in NEWER_KEYWORDS.get(name or "", ())]
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE_ROOT.parent)))
def test_every_module_is_python_39(path):
    tree = ast.parse(path.read_text(), str(path), feature_version=(3, 9))
    assert uses_of_newer_api(tree) == []


def test_the_api_check_catches_newer_names():
    source = "import asyncio, tomllib\nfrom typing import Self\nasync def f(x):\n    async with asyncio.timeout(1):\n        return anext(x), zip(x, x, strict=True)\n"
    assert sorted(uses_of_newer_api(ast.parse(source))) == sorted(["tomllib", "typing.Self", "asyncio.timeout", "anext", "zip(strict=)"])
    with pytest.raises(SyntaxError):
        ast.parse("match x:\n    case 1:\n        pass\n", feature_version=(3, 9))


def is_standard_library(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return False
    if spec.origin in ("built-in", "frozen"):
        return True
    origin = Path(spec.origin).resolve()
    return STDLIB in origin.parents and not {"site-packages", "dist-packages"} & set(origin.parts)


def imported_modules(tree: ast.AST) -> set:
    """The top-level modules a file imports (relative imports left out)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_examples_import_only_the_standard_library_and_this_package():
    assert EXAMPLES, f"no examples under {PACKAGE_ROOT.parent / 'examples'}"
    for path in EXAMPLES:
        others = {m for m in imported_modules(ast.parse(path.read_text())) if m != "strands_backend" and not is_standard_library(m)}
        assert others == set(), f"{path.name} imports {sorted(others)}"
    assert not is_standard_library("pytest") and is_standard_library("asyncio") and is_standard_library("json")


def test_importing_adds_only_a_null_handler_and_sets_no_level():
    check = (
        "import logging, strands_backend\n"
        "lib = logging.getLogger('strands_backend')\n"
        "assert lib.level == logging.NOTSET and lib.propagate, (lib.level, lib.propagate)\n"
        "assert [type(h) for h in lib.handlers] == [logging.NullHandler], lib.handlers\n"
        "assert logging.getLogger().handlers == [] and logging.getLogger().level == logging.WARNING\n"
    )
    subprocess.run([sys.executable, "-c", check], cwd=PACKAGE_ROOT, check=True, timeout=30)


def test_the_upstream_names_are_exported():
    for name in ("PyStrands", "PyStrandsClient", "AsyncPyStrandsClient", "Context", "ConnectionRequestContext"):
        assert name in strands_backend.__all__ and hasattr(strands_backend, name)
    assert (PACKAGE_ROOT / "strands_backend" / "py.typed").exists()
