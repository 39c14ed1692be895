"""Extend by adding a file: what each module of a package defines under one name.

The importers (`IMPORTER = Importer(...)` in corpus/importers/) and the platform adapters
(`ADAPTER = Adapter(...)` in publishing/adapters/) are found this way: every module of
the package is imported and the object under that name kept when it is of the kind, so a
new format or platform is one new file and no central list to edit. Imports nothing of
marinade.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def defined_in_modules(package: str, path: Iterable[str], name: str, kind: type[T]) -> list[T]:
    """Each `package.module.<name>` that is a `kind`, in the order the modules are found;
    `path` is the package's `__path__`."""
    found = []
    for module_info in pkgutil.iter_modules(path):
        module = importlib.import_module(f"{package}.{module_info.name}")
        value = getattr(module, name, None)
        if isinstance(value, kind):
            found.append(value)
    return found
