"""The tests' own layout: conftest files hold only fixtures and hooks, helpers live in
tests/support and are never imported from a conftest or from another test module, and tests/app
has a folder per feature package of app/. Each rule is checked on the real tree and, once, on a
deliberate breach."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
APP = TESTS.parent / "app"

# Feature packages of app/ whose tests live elsewhere, each with the reason. Empty today: every
# package has its tests/app/<name>/ folder.
NO_TESTS_FOLDER: dict[str, str] = {}


def _is_fixture(decorator: ast.expr) -> bool:
    """True for @pytest.fixture, @pytest.fixture(...) and @fixture / @fixture(...)."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Attribute):
        return target.attr == "fixture"
    return isinstance(target, ast.Name) and target.id == "fixture"


def _is_hook(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return function.name.startswith("pytest_")


def conftest_breaches(source: str) -> list[str]:
    """What a conftest module defines at its top level besides fixtures and hooks."""
    breaches = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef):
            breaches.append(f"class {node.name}")
        elif (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and not _is_hook(node)
            and not any(map(_is_fixture, node.decorator_list))
        ):
            breaches.append(f"function {node.name}")
    return breaches


def conftest_imports(source: str) -> list[str]:
    """The conftest modules a module imports from (at any depth, in any form)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            modules = [module]
            if any(alias.name == "conftest" for alias in node.names):
                modules.append(f"{module.rstrip('.')}.conftest" if node.module else "conftest")
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        found += [module for module in modules if module.split(".")[-1] == "conftest"]
    return found


def imported_test_modules(source: str) -> list[str]:
    """The test modules (test_*.py) a module imports from, at any depth."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        found += [m for m in modules if m.split(".")[-1].startswith("test_")][:1]
    return found


def feature_packages(app: Path) -> list[str]:
    """The feature packages of app/: its folders that are Python packages."""
    return sorted(path.parent.name for path in app.glob("*/__init__.py"))


def missing_test_folders(app: Path, tests_app: Path) -> list[str]:
    """Feature packages with no tests/app/<name>/ package holding a test module."""
    missing = []
    for name in feature_packages(app):
        folder = tests_app / name
        if name in NO_TESTS_FOLDER:
            continue
        if not (folder / "__init__.py").is_file() or not any(folder.glob("test_*.py")):
            missing.append(name)
    return missing


def test_conftest_files_hold_only_fixtures_and_hooks() -> None:
    breaches = {
        str(path.relative_to(TESTS)): found
        for path in sorted(TESTS.rglob("conftest.py"))
        if "vendor" not in path.parts and (found := conftest_breaches(path.read_text()))
    }
    assert breaches == {}, "move these helpers into tests/support/"


def test_the_conftest_check_finds_a_helper() -> None:
    source = """
import pytest

LIMIT = 3

@pytest.fixture
def fine() -> int:
    return LIMIT

@pytest.fixture(scope="session")
def also_fine() -> int:
    return 1

def pytest_configure(config): ...

def helper() -> int:
    return 2

class Thing: ...
"""
    assert conftest_breaches(source) == ["function helper", "class Thing"]


def test_nothing_imports_from_a_conftest() -> None:
    importers = {
        str(path.relative_to(TESTS)): found
        for path in sorted(TESTS.rglob("*.py"))
        if "vendor" not in path.parts and (found := conftest_imports(path.read_text()))
    }
    assert importers == {}, "import helpers from tests.support; fixtures need no import"


def test_the_import_check_finds_each_form() -> None:
    source = (
        "from tests.conftest import csrf_token\n"
        "def f():\n    from tests.app.conftest import sign_up\n"
        "import tests.jobs.conftest\n"
        "from tests.storage import conftest\n"
        "from .conftest import DATABASES\n"
        "from . import conftest\n"
        "from tests.support.web import csrf_token\n"
    )
    assert conftest_imports(source) == [
        "tests.conftest",
        "tests.jobs.conftest",
        "tests.storage.conftest",
        ".conftest",
        "conftest",
        "tests.app.conftest",
    ]


def test_no_test_module_imports_another() -> None:
    importers = {
        str(path.relative_to(TESTS)): found
        for path in sorted(TESTS.rglob("*.py"))
        if "vendor" not in path.parts and (found := imported_test_modules(path.read_text()))
    }
    assert importers == {}, "shared helpers belong in tests/support (or a folder's support.py)"


def test_the_test_module_check_finds_each_form() -> None:
    source = (
        "from tests.jobs.test_retention import ENDED\n"
        "def f():\n    from tests.training.test_checkpoint_lora import verify_checkpoint\n"
        "import tests.app.test_config\n"
        "from tests.app.billing import test_dev_billing\n"
        "from tests.support.billing import choose_plan\n"
        "from tests.app.privacy.support import snapshot\n"
    )
    assert imported_test_modules(source) == [
        "tests.jobs.test_retention",
        "tests.app.test_config",
        "tests.app.billing.test_dev_billing",
        "tests.training.test_checkpoint_lora",
    ]


def test_every_feature_package_has_its_tests_app_folder() -> None:
    assert feature_packages(APP), "found no feature packages: has app/ moved?"
    assert set(NO_TESTS_FOLDER) <= set(feature_packages(APP)), "a stale exception"
    assert missing_test_folders(APP, TESTS / "app") == []


def test_a_flat_test_file_of_a_feature_package_is_refused() -> None:
    packages = feature_packages(APP)
    flat = [
        path.name
        for path in sorted((TESTS / "app").glob("test_*.py"))
        if any(
            path.stem == f"test_{name}" or path.stem.startswith(f"test_{name}_")
            for name in packages
        )
    ]
    assert flat == [], "tests of a feature package go in tests/app/<package>/"


def test_the_folder_check_finds_a_package_without_tests(tmp_path: Path) -> None:
    app, tests_app = tmp_path / "app", tmp_path / "tests_app"
    for name in ("kept", "bare", "empty"):
        (app / name).mkdir(parents=True)
        (app / name / "__init__.py").touch()
    (app / "templates").mkdir()  # no __init__.py: not a package
    (tests_app / "kept").mkdir(parents=True)
    (tests_app / "kept" / "__init__.py").touch()
    (tests_app / "kept" / "test_kept.py").touch()
    (tests_app / "empty").mkdir()
    (tests_app / "empty" / "__init__.py").touch()
    assert missing_test_folders(app, tests_app) == ["bare", "empty"]
