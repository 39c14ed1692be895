"""A zip file, a tar archive or a folder, read the same way: members by path.

Export archives move their files around between versions and capitalise
folder names differently, so importers find members by basename or by path
suffix, case-insensitively.

An archive may be hostile. Only regular files are members: a folder's symlinks that lead
out of it (`link -> /etc/passwd`), FIFOs, devices and sockets, and a zip's or tar's links
and devices are left out and counted (`left_out`, which the import reports as skipped);
a FIFO or a device given as the input is an error, not a read that never ends. Every
member is read through corpus/limits.py's bounded stream, and a member read whole is
held to the record limit.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from marinade.corpus.document import CorpusFormatError, ImportOptions
from marinade.corpus.limits import FILE_FLAG, RECORD_FLAG, bounded, too_big

LINK_OUT = "link out of the folder"
NOT_REGULAR = "not a regular file"
DEFAULTS = ImportOptions()


class Archive:
    def __init__(
        self,
        path: Path,
        max_record_bytes: int = DEFAULTS.max_record_bytes,
        max_file_bytes: int = DEFAULTS.max_file_bytes,
    ):
        self.path = path
        self.max_record_bytes, self.max_file_bytes = max_record_bytes, max_file_bytes
        self.left_out: list[tuple[str, str]] = []  # (member, why), reported as skipped
        self._zip: zipfile.ZipFile | None = None
        self._tar: tarfile.TarFile | None = None
        try:
            if path.is_dir():
                self.names = self._folder_members(path)
            elif not path.is_file():
                raise CorpusFormatError(
                    str(path),
                    None,
                    "not a regular file (a FIFO, device or socket); "
                    "give a file, a folder, a zip or a tar archive",
                )
            elif zipfile.is_zipfile(path):
                self._zip = zipfile.ZipFile(path)
                self.names = []
                for info in self._zip.infolist():
                    file_type = stat.S_IFMT(info.external_attr >> 16)
                    if info.is_dir():
                        continue
                    if file_type and file_type != stat.S_IFREG:
                        self.left_out.append((info.filename, NOT_REGULAR))
                    else:
                        self.names.append(info.filename)
            elif tarfile.is_tarfile(path):
                self._tar = tarfile.open(path)
                self.names = []
                for member in self._tar.getmembers():
                    if member.isfile():
                        self.names.append(member.name)
                    elif not member.isdir():
                        self.left_out.append((member.name, NOT_REGULAR))
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

    def _folder_members(self, root: Path) -> list[str]:
        """The regular files under `root`, links included only where they stay inside it."""
        names, inside = [], root.resolve()
        for folder, subfolders, files in os.walk(root, followlinks=False):
            base = Path(folder)
            for sub in subfolders:
                link = base / sub
                if link.is_symlink() and not _within(link, inside):
                    self.left_out.append((_relative(link, root), LINK_OUT))
            for file in files:
                entry = base / file
                name = _relative(entry, root)
                if entry.is_symlink() and not _within(entry, inside):
                    self.left_out.append((name, LINK_OUT))
                    continue
                try:
                    regular = stat.S_ISREG(entry.stat().st_mode)
                except OSError:  # a dangling link, or gone meanwhile
                    regular = False
                if regular:
                    names.append(name)
                else:
                    self.left_out.append((name, NOT_REGULAR))
        return sorted(names)

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
        label, limit = self.label(name), self.max_file_bytes
        try:
            if self._zip is not None:
                if self._zip.getinfo(name).file_size > limit:  # what it claims; read, it is held
                    raise CorpusFormatError(label, None, too_big("the file", limit, FILE_FLAG))
                with self._zip.open(name) as handle:
                    yield bounded(handle, limit, label)
            elif self._tar is not None:
                member = self._tar.extractfile(name)
                if member is None:
                    raise CorpusFormatError(f"{self.path}:{name}", None, "not a regular file")
                with member:
                    yield bounded(member, limit, label)  # type: ignore[arg-type]
            elif self.path.is_dir():
                with (self.path / name).open("rb") as handle:
                    yield bounded(handle, limit, label)
            else:
                with self.path.open("rb") as handle:
                    yield bounded(handle, limit, label)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as error:
            raise CorpusFormatError(f"{self.path}:{name}", None, f"cannot read: {error}") from None

    def read_bytes(self, name: str) -> bytes:
        """A member whole, for formats that must parse a file at once: it counts as one
        record, so it may be at most max_record_bytes."""
        limit = self.max_record_bytes
        with self.open(name) as handle:
            try:
                data = handle.read(limit + 1)
            except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as error:
                raise CorpusFormatError(
                    f"{self.path}:{name}", None, f"cannot read: {error}"
                ) from None
        if len(data) > limit:
            problem = too_big("the file, which this format reads whole,", limit, RECORD_FLAG)
            raise CorpusFormatError(self.label(name), None, problem)
        return data

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


def _within(link: Path, root: Path) -> bool:
    """Whether a link's target lies inside the (resolved) folder `root`."""
    try:
        return link.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a loop of links
        return False


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)).replace("\\", "/")
