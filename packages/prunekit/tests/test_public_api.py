"""The public API: `__all__` is sorted and every name in it exists."""

import importlib


def test_all_is_sorted_and_resolves() -> None:
    mod = importlib.import_module("prunekit")
    names = list(mod.__all__)
    assert names == sorted(names), "__all__ must be sorted"
    assert len(set(names)) == len(names), "__all__ has duplicates"
    for name in names:
        assert hasattr(mod, name), f"prunekit.__all__ names {name!r} but it is missing"
