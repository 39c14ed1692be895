"""A zip file, a tar archive or a folder, read the same way: members by path.

Export archives move their files around between versions and capitalise
folder names differently, so importers find members by basename or by path
suffix, case-insensitively.
"""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from marinade.corpus.document import CorpusFormatError


class Archive:
    def __init__(self, path: Path):
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._tar: tarfile.TarFile | None = None
        try:
            if path.is_dir():
                self.names = sorted(
                    str(p.relative_to(path)).replace("\\", "/")
                    for p in path.rglob("*")
                    if p.is_file()
                )
            elif zipfile.is_zipfile(path):
                self._zip = zipfile.ZipFile(path)
                self.names = [i.filename for i in self._zip.infolist() if not i.is_dir()]
            elif tarfile.is_tarfile(path):
                self._tar = tarfile.open(path)
                self.names = [m.name for m in self._tar.getmembers() if m.isfile()]
            else:  # a single plain file: its one member is itself
                with path.open("rb") as handle:
                    magic = handle.read(4)
                if magic.startswith((b"PK\x03\x04", b"\x1f\x8b")):
                    kind = "zip" if magic.startswith(b"PK") else "gzip"
                    raise CorpusFormatError(
                        str(path),
                        None,
                        f"a {kind} archive that cannot be read: truncated or corrupt",
                    )
                self.names = [path.name]
        except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as error:
            raise CorpusFormatError(str(path), None, f"cannot read the archive: {error}") from None

    @property
    def is_container(self) -> bool:
        """A folder, zip or tar; False for a single plain file (whose one member is itself)."""
        return self.path.is_dir() or self._zip is not None or self._tar is not None

    def label(self, name: str) -> str:
        """How errors and `source` name a member: the file itself, or archive:member."""
        return str(self.path) if not self.is_container else f"{self.path.name}:{name}"

    def find(self, basename: str) -> list[str]:
        """Members whose file name is `basename` (any case), in sorted order."""
        wanted = basename.lower()
        return sorted(n for n in self.names if n.rsplit("/", 1)[-1].lower() == wanted)

    def matching(self, predicate) -> list[str]:  # type: ignore[no-untyped-def]
        return sorted(n for n in self.names if predicate(n.lower()))

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        """A member as a binary stream; corrupt members are a CorpusFormatError."""
        try:
            if self._zip is not None:
                with self._zip.open(name) as handle:
                    yield handle
            elif self._tar is not None:
                member = self._tar.extractfile(name)
                if member is None:
                    raise CorpusFormatError(f"{self.path}:{name}", None, "not a regular file")
                with member:
                    yield member
            elif self.path.is_dir():
                with (self.path / name).open("rb") as handle:
                    yield handle
            else:
                with self.path.open("rb") as handle:
                    yield handle
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as error:
            raise CorpusFormatError(f"{self.path}:{name}", None, f"cannot read: {error}") from None

    def read_bytes(self, name: str) -> bytes:
        with self.open(name) as handle:
            try:
                return handle.read()
            except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as error:
                raise CorpusFormatError(
                    f"{self.path}:{name}", None, f"cannot read: {error}"
                ) from None

    def head(self, name: str, size: int = 4096) -> bytes:
        """The first bytes of a member, for detecting formats by content."""
        with self.open(name) as handle:
            return handle.read(size)

    def members_whose_head(
        self, names: Iterable[str], looks_right: Callable[[bytes], bool]
    ) -> list[str]:
        """The members among `names` whose first bytes `looks_right` accepts (for detection:
        an unreadable member is simply not one of them)."""
        found = []
        for name in names:
            try:
                if looks_right(self.head(name)):
                    found.append(name)
            except CorpusFormatError:
                continue
        return found

    def read_text(self, name: str) -> str:
        data = self.read_bytes(name)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise CorpusFormatError(
                f"{self.path}:{name}", None, f"not UTF-8 text: {error}"
            ) from None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        if self._tar is not None:
            self._tar.close()
