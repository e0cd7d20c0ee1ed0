"""Object keys: one module builds them all, from ids the server owns."""

from __future__ import annotations

import ast
from pathlib import Path

from app import object_keys as keys

ROOT = Path(__file__).resolve().parents[2]
KEYS_MODULE = ROOT / "app" / "object_keys.py"
# Outside app/object_keys.py, a string joined onto a key's start (a model's prefix method, a
# call into object_keys, a `*prefix` variable where storage is used) or a literal naming a
# person's prefix is a key built by hand.
PREFIX_METHODS = {"storage_prefix", "object_prefix"}


def _names_a_prefix(node: ast.AST, uses_storage: bool) -> bool:
    """True for `x.storage_prefix()`, `object_keys.run_prefix(...)`, a `prefix` variable in a
    module that uses storage, and the like: the start of a key."""
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute):
            owner = func.value
            return func.attr in PREFIX_METHODS or getattr(owner, "id", "") == "object_keys"
        return uses_storage and getattr(func, "id", "").endswith("_prefix")
    return uses_storage and isinstance(node, ast.Name) and node.id.endswith("prefix")


def _docstrings(tree: ast.AST) -> set[int]:
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def _joins_onto_a_prefix(node: ast.AST, uses_storage: bool) -> bool:
    """`f"{x.storage_prefix()}samples/"` or `prefix + name`: text added to a key's start."""
    if isinstance(node, ast.JoinedStr) and len(node.values) > 1:
        start = node.values[0]
        return isinstance(start, ast.FormattedValue) and _names_a_prefix(start.value, uses_storage)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _names_a_prefix(node.left, uses_storage)
    return False


def _key_building(tree: ast.AST, uses_storage: bool = True) -> list[tuple[int, str]]:
    """(line, source) of every place in a module that builds an object key by hand."""
    found, docstrings = {}, _docstrings(tree)
    for node in ast.walk(tree):
        if _joins_onto_a_prefix(node, uses_storage):
            found[node.lineno] = ast.unparse(node)
        # A person's prefix as a literal, also the start of an f-string ("users/" then an id).
        names_users = isinstance(node, ast.Constant) and str(node.value).startswith("users/")
        if names_users and id(node) not in docstrings:
            found.setdefault(node.lineno, str(node.value))
    return sorted(found.items())


def test_no_key_is_built_outside_the_keys_module() -> None:
    modules = [
        path
        for folder in ("app", "jobs")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != KEYS_MODULE
    ]
    assert len(modules) > 50  # the walk really read the tree
    places = []
    for path in modules:
        code = path.read_text(encoding="utf-8")
        uses_storage = "get_storage" in code or "object_keys" in code
        for line, source in _key_building(ast.parse(code), uses_storage):
            places.append(f"{path.relative_to(ROOT)}:{line}: {source}")
    assert places == []


def test_the_walk_finds_a_key_built_by_hand() -> None:
    code = (
        'a = f"users/{user_id}/runs/{run_id}/"\n'
        'b = f"{run.storage_prefix()}samples/{name}"\n'
        "c = item.object_prefix() + 'thumbnail.webp'\n"
        'd = "users/"\n'
        'ok = f"{base}/api/runs/{run.id}"\n'
    )
    assert [line for line, _ in _key_building(ast.parse(code))] == [1, 2, 3, 4]


def test_the_layout_is_the_documented_one() -> None:
    item = keys.item_prefix(5, 3, 9)
    assert item == "users/5/datasets/3/items/9/"
    assert keys.item_upload(item, "tok", ".png") == item + "upload/tok.png"
    assert keys.item_accepted(item, ".png") == item + "accepted/original.png"
    assert keys.item_thumbnail(item) == item + "thumbnail.webp"
    entry = keys.archive_entry(item, 2)
    assert entry == item + "entries/2/"
    assert keys.entry_original(entry, ".jpg") == entry + "original.jpg"
    run = keys.run_prefix(5, 7)
    assert run == "users/5/runs/7/"
    assert keys.run_checkpoint(run, 40) == run + "checkpoints/step-000040/"
    assert keys.run_sample(run, "0.png") == run + "samples/0.png"
    assert keys.run_lora(run, "a.safetensors") == run + "lora/a.safetensors"
    assert keys.generation_prefix(5, 1) == "users/5/media/generations/1/"
    assert keys.export_prefix(5, 4) == "users/5/exports/4/"
    assert keys.datasets_prefix(5) == "users/5/datasets/"


def test_upload_keys_and_owners_are_read_back_from_keys() -> None:
    item = keys.item_prefix(5, 3, 9)
    assert keys.is_upload_key(keys.item_upload(item, "tok", ".png"))
    assert not keys.is_upload_key(keys.item_accepted(item, ".png"))
    assert not keys.is_upload_key(keys.item_thumbnail(item))
    assert keys.owner_of(item) == 5
    assert keys.owner_of("public/logo.png") is None
    assert keys.owner_of("xusers/5/") is None
