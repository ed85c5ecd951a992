"""Reading the user's files with bounds: regular files only, at most a size limit.

A spec or data file may be a link to /dev/zero, a FIFO nobody writes to, a sparse file of a
terabyte, or an .npy whose header claims a shape of petabytes. Each is refused with one line
before anything big is read or allocated: the file type is taken with os.stat before the file
is opened (opening a FIFO blocks), the file is opened with O_NONBLOCK and checked again with
fstat (a file swapped for a FIFO in between), and no more than the limit is ever read.

The limit is DEFAULT_MAX_BYTES (256 MiB), or the environment variable GRAPHSPEC_MAX_FILE_BYTES
(bytes, or with a suffix: 512MiB, 2G), or `limit_file_size(n)` around API calls.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import GraphspecError, SpecError, UsageError

DEFAULT_MAX_BYTES = 256 * 2**20
ENV_VAR = "GRAPHSPEC_MAX_FILE_BYTES"

_limit: contextvars.ContextVar[int | None] = contextvars.ContextVar("graphspec_max_file_bytes", default=None)
Error = Callable[..., GraphspecError]


_BYTES = {"": 1, "b": 1, "kb": 10 ** 3, "mb": 10 ** 6, "gb": 10 ** 9, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
          "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def amount(value: int | float | str, units: dict[str, Any], what: str, example: str) -> float:
    """A positive number with an optional unit of ``units`` ("512MB", "30s"); a ValueError says ``what``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number, unit = float(value), ""
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*", str(value))
        if not m or m.group(2).lower() not in units:
            raise ValueError(f"{what} {value!r} is not an amount like {example}")
        number, unit = float(m.group(1)), m.group(2).lower()
    if not number > 0 or not math.isfinite(number):
        raise ValueError(f"{what} must be positive, got {value!r}")
    return number * units[unit]


def parse_bytes(value: int | float | str) -> int:
    """A size in bytes: 536870912, "512MB" (powers of 1000), "512MiB", "1G" (K, M, G alone and KiB, MiB, GiB:
    powers of 1024); the checker's --memory and GRAPHSPEC_MAX_FILE_BYTES read it alike."""
    return max(1, int(amount(value, _BYTES, "a size", "512MB or 1GiB")))


def file_size_limit() -> int:
    """The largest file (and the largest array in an .npy or .npz) graphspec reads, in bytes."""
    given = _limit.get()
    if given is not None:
        return given
    text = os.environ.get(ENV_VAR)
    if text is None or not text.strip():
        return DEFAULT_MAX_BYTES
    try:
        return parse_bytes(text)
    except ValueError:
        raise UsageError(f"{ENV_VAR}={text[:40]!r}: expected a number of bytes, like 1000000, 512MiB or 2G") from None


@contextlib.contextmanager
def limit_file_size(max_bytes: int) -> Iterator[None]:
    """Within the block, read files of up to ``max_bytes`` (instead of the default or the
    environment's)."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError(f"max_bytes must be a non-negative int, got {max_bytes!r}")
    token = _limit.set(max_bytes)
    try:
        yield
    finally:
        _limit.reset(token)


def _mib(n: int) -> str:
    return f"{n / 2**20:.3g} MiB" if n >= 2**20 else f"{n:,} bytes"


def over_limit(what: str, size: int, limit: int) -> str:
    """'the file has 9,000 bytes, over the limit of ...': ``what`` says what has the bytes."""
    return (f"{what} {size:,} bytes, over the limit of {limit:,} ({_mib(limit)}; "
            f"set {ENV_VAR} to read bigger files)")


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def shown_name(name: str | None) -> str | None:
    """A file name as an error line can show it: control characters escaped, a long one cut."""
    if name is None:
        return None
    name = "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)
    return name if len(name) <= 80 else f"{name[:50]}...{name[-20:]} ({len(name):,} characters)"


class Reader:
    """How one file is named in errors: ``name`` (None for the spec file itself, which its
    ``source`` names), the place in the spec, and the error type."""

    def __init__(self, path: Path, *, name: str | None = None, loc: str | None = None, source: str | None = None,
                 error: Error = SpecError):
        self.path, self.name, self.loc, self.source, self.error = path, shown_name(name), loc, source, error

    def fail(self, problem: str, sep: str = ": ") -> GraphspecError:
        """The error for ``problem``, after the file's name and ``sep`` ("b.npz holds ...": " ")."""
        text = f"{self.name}{sep}{problem}" if self.name else problem
        return self.error(text, loc=self.loc, source=self.source)

    def missing(self) -> GraphspecError:
        if self.name is None:
            return self.fail("no such file")
        parent = self.path.parent
        return self.error(f"file not found: {self.name} (looked in {parent})", loc=self.loc, source=self.source)

    def _not_regular(self, mode: int) -> GraphspecError:
        link = ""
        with contextlib.suppress(OSError, ValueError):
            if self.path.is_symlink():
                link = f" (a link to {os.path.realpath(self.path)})"
        return self.fail(f"not a regular file but {_kind(mode)}{link}: graphspec reads regular files only")

    @contextlib.contextmanager
    def open(self) -> Iterator[tuple[IO[bytes], int]]:
        """The file opened for reading, and its size; only a regular file within the limit."""
        limit = file_size_limit()
        try:
            st = os.stat(self.path)  # before opening: opening a FIFO for reading blocks until a writer comes
        except (FileNotFoundError, NotADirectoryError):
            raise self.missing() from None
        except OSError as e:
            raise self.fail(f"cannot read: {(e.strerror or str(e)).lower()}") from None
        except ValueError:  # a NUL byte in the path
            raise self.fail("cannot read: the file name holds a NUL character") from None
        if not stat.S_ISREG(st.st_mode):
            raise self._not_regular(st.st_mode)
        if st.st_size > limit:
            raise self.fail(over_limit("the file has", st.st_size, limit))
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags)
        except FileNotFoundError:
            raise self.missing() from None
        except OSError as e:
            raise self.fail(f"cannot read: {(e.strerror or str(e)).lower()}") from None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)  # the same file as stat saw? (not one swapped for a FIFO meanwhile)
            if not stat.S_ISREG(st.st_mode):
                raise self._not_regular(st.st_mode)
            if st.st_size > limit:
                raise self.fail(over_limit("the file has", st.st_size, limit))
            yield f, st.st_size

    def read_bytes(self) -> bytes:
        """The whole file, refused past the limit (also when it grows while being read)."""
        limit = file_size_limit()
        with self.open() as (f, size):
            data = f.read(min(size, limit) + 1)  # +1: a file that grew shows it
            while len(data) <= limit:
                more = f.read(min(2**20, limit + 1 - len(data)))
                if not more:
                    break
                data += more
        if len(data) > limit:
            raise self.fail(over_limit("the file grew past", len(data), limit))
        return data

    def read_text(self) -> str:
        """The file as UTF-8 text, a leading byte order mark (Windows editors write one) dropped."""
        data = self.read_bytes()
        skip = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        try:
            return str(memoryview(data)[skip:], "utf-8")
        except UnicodeDecodeError as e:
            at = e.start + skip
            line = data.count(b"\n", 0, at) + 1
            raise self.fail(f"not UTF-8 text: byte 0x{data[at]:02x} on line {line} "
                            f"(offset {at:,}); save the file as UTF-8") from None

    # -- .npy and .npz -------------------------------------------------------------------------

    def _check_npy_header(self, f: IO[bytes], available: int, what: str) -> None:
        """Read the .npy header at f's position and refuse an array that holds Python objects,
        is bigger than the limit, or bigger than the data that follows (a truncated file, or a
        crafted header: numpy would allocate the claimed size before noticing)."""
        from numpy.lib import format as npy

        pre = f"{what}: " if what else ""
        start = f.tell()
        try:
            version = npy.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = npy.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = npy.read_array_header_2_0(f)
            else:
                raise self.fail(f"{pre}.npy format version {version[0]}.{version[1]} is not read here "
                                "(numpy writes 1.0 or 2.0 for arrays of numbers)")
        except GraphspecError:
            raise
        except (ValueError, EOFError, OSError, SyntaxError, TypeError, zipfile.BadZipFile):
            # numpy's wording ("the magic string is not correct") said as what it means
            raise self.fail(f"{pre}not an .npy array file (no valid .npy header)") from None
        if dtype.hasobject:
            raise self.fail(f"{pre}holds Python objects (dtype {dtype}), not numbers; graphspec never unpickles")
        nbytes = math.prod(shape) * dtype.itemsize
        limit = file_size_limit()
        if nbytes > limit:
            raise self.fail(pre + over_limit(f"an array of shape {list(shape)} ({dtype}) takes", nbytes, limit))
        left = available - (f.tell() - start)
        if nbytes > left:
            raise self.fail(f"{pre}truncated: the header promises {nbytes:,} bytes of data "
                            f"(shape {list(shape)}, {dtype}), the file has {max(left, 0):,}")

    def _npy_from(self, f: IO[bytes], size: int, what: str) -> Any:
        from numpy.lib import format as npy

        start = f.tell()
        self._check_npy_header(f, size, what)
        f.seek(start)
        try:
            return npy.read_array(f, allow_pickle=False)
        except (ValueError, EOFError, OSError, zipfile.BadZipFile, zipfile.LargeZipFile) as e:
            raise self.fail(f"{what}: cannot read: {e}" if what else f"cannot read: {e}") from None

    def read_npy(self) -> Any:
        """An .npy file as an array."""
        with self.open() as (f, size):
            return self._npy_from(f, size, "")

    def npz_members(self, f: IO[bytes]) -> tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo]]:
        try:
            zf = zipfile.ZipFile(f)
            infos = zf.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as e:
            raise self.fail(f"cannot read: {e}" if isinstance(e, zipfile.BadZipFile) else
                            "not an .npz file (a zip archive of .npy arrays)") from None
        # np.savez names each member KEY.npy; numpy reads a member without .npy as KEY too
        return zf, {(i.filename[:-4] if i.filename.endswith(".npy") else i.filename): i for i in infos}

    def npz_array(self, zf: zipfile.ZipFile, key: str, info: zipfile.ZipInfo) -> Any:
        limit = file_size_limit()
        what = f"array '{key}'"
        if info.file_size > limit:
            raise self.fail(f"{what}: " + over_limit("decompresses to", info.file_size, limit))
        try:
            with zf.open(info) as m:
                return self._npy_from(m, info.file_size, what)
        except GraphspecError:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError, NotImplementedError,
                RuntimeError) as e:  # a bad CRC, an encrypted member, an unknown compression
            raise self.fail(f"{what}: cannot read: {e}") from None

    def read_npz(self, key: str | None, key_syntax: Callable[[str], str]) -> Any:
        """One array of an .npz: ``key``, or the only one there is (``key_syntax`` spells how
        to name a key where the file holds several)."""
        with self.open() as (f, _):
            zf, members = self.npz_members(f)
            with zf:
                keys = sorted(members)
                if key is None:
                    if not keys:
                        raise self.fail("holds no arrays", " ")
                    if len(keys) > 1:
                        listed = keys if len(keys) <= 20 else [*keys[:20], "..."]
                        raise self.fail(f"holds {listed}: say which with {key_syntax(keys[0])}", " ")
                    key = keys[0]
                if key not in members:
                    listed = keys if len(keys) <= 20 else [*keys[:20], "..."]
                    raise self.fail(f"has no array '{shown_name(key)}' (it holds {listed})", " ")
                return self.npz_array(zf, key, members[key])

    def read_npz_all(self) -> dict[str, Any]:
        """Every array of an .npz by name."""
        with self.open() as (f, _):
            head = f.read(6)
            f.seek(0)
            if head == b"\x93NUMPY":
                raise self.fail("expected an .npz of named arrays (as train saves), got one array")
            if not head.startswith(b"PK"):
                raise self.fail("not an .npz file (train saves params as .npz)")  # a CSV made np.load speak of pickles
            zf, members = self.npz_members(f)
            with zf:
                return {k: self.npz_array(zf, k, members[k]) for k in sorted(members)}


