"""Host facts: the one place ``devkit doctor`` reads ``/proc``, ``/etc``, the environment, PATH and
tool outputs.

Checks ask a :class:`Host`; tests hand them a :class:`RecordedHost` loaded from
``tests/hosts/<name>.json`` so that WSL2, WSL1 and macOS are exercised on a Linux machine.
Workspace and store files (``.envrc.sh``, the cache directory) are not host facts: checks read those
directly, since tests create them for real.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from devkit.util import cmd_output

DEFAULT_TIMEOUT = 10.0  # seconds for one tool call; `uv lock --check --offline` takes ~0.3 s


@dataclasses.dataclass(frozen=True)
class RunResult:
    """Outcome of one command: ``error`` is set when it could not run at all.

    ``error`` is e.g. ``"not found"``, ``"timed out after 10 s"`` or ``"not in the recording"``;
    then ``returncode`` is -1.
    """

    returncode: int
    stdout: str = ""
    stderr: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the command ran and exited 0."""
        return self.error is None and self.returncode == 0

    def last_line(self) -> str:
        """The most telling line: the error, else the last ``error``/``ERROR`` line, else the last."""
        if self.error:
            return self.error
        lines = [ln.strip() for ln in (self.stderr + "\n" + self.stdout).splitlines() if ln.strip()]
        for line in reversed(lines):
            if line.startswith("error:") or "ERROR" in line:
                return line
        return lines[-1] if lines else f"exit code {self.returncode}"


@dataclasses.dataclass(frozen=True)
class Mount:
    """One mounted filesystem: mount point, type (``ext4``, ``9p``, ``apfs``…) and options."""

    point: str
    fstype: str
    options: str = ""


class Host:
    """The live machine. ``env`` defaults to a copy of ``os.environ`` taken at construction."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        """Read ``env`` (default ``os.environ``) once; nothing else is read until asked."""
        self.env: dict[str, str] = dict(os.environ if env is None else env)

    @property
    def live(self) -> bool:
        """True when :meth:`run` starts real processes with this process's own environment: what
        they answer is what devkit's other modules would be told."""
        return type(self).run is Host.run and self.env == dict(os.environ)

    # -- primitive facts (overridden by RecordedHost) ----------------------------------------
    @property
    def system(self) -> str:
        """``platform.system()``: ``Linux``, ``Darwin``, ``Windows``…"""
        return platform.system()

    @property
    def machine(self) -> str:
        """``platform.machine()``: ``x86_64``, ``arm64``…"""
        return platform.machine()

    def read_text(self, path: str) -> str | None:
        """Text of ``path`` (UTF-8, undecodable bytes replaced), or None when unreadable."""
        try:
            with open(path, encoding="utf-8", errors="replace", newline="") as fh:
                return fh.read()
        except (OSError, ValueError):
            return None

    def exists(self, path: str) -> bool:
        """True when ``path`` exists (file or directory)."""
        return os.path.exists(path)

    def is_executable(self, path: str) -> bool:
        """True when ``path`` is an executable file."""
        return os.path.isfile(path) and os.access(path, os.X_OK)

    def list_dir(self, path: str) -> list[str]:
        """Names in directory ``path``, sorted; empty when it is missing or unreadable."""
        try:
            return sorted(os.listdir(path))
        except OSError:
            return []

    def run(
        self,
        cmd: Sequence[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> RunResult:
        """Run ``cmd`` (stdin closed, text output); ``env`` defaults to :attr:`env`. Never raises."""
        if cwd is not None and not os.path.isdir(cwd):
            return RunResult(-1, error=f"no such directory: {os.fspath(cwd)}")
        try:
            proc = cmd_output(*cmd, cwd=cwd, env=self.env if env is None else env,
                              check=False, timeout=timeout)
        except FileNotFoundError:
            return RunResult(-1, error=f"{cmd[0]}: not found")
        except subprocess.TimeoutExpired:
            return RunResult(-1, error=f"`{' '.join(cmd)}` timed out after {timeout:g} s")
        except OSError as exc:
            return RunResult(-1, error=f"cannot run {cmd[0]}: {exc.strerror or exc}")
        return RunResult(proc.returncode, proc.stdout, proc.stderr)

    # -- derived facts (the same code for live and recorded hosts) ---------------------------
    @property
    def home(self) -> str:
        """``$HOME`` from :attr:`env` (``~`` of the process when unset)."""
        return self.env.get("HOME") or os.path.expanduser("~")

    def which(self, *names: str) -> str | None:
        """First ``$PATH`` entry holding an executable named one of ``names`` (PATH order wins).

        ``which("uv", "uv.exe")`` finds a Windows ``uv.exe`` that comes before a Linux ``uv``.
        """
        for directory in self.env.get("PATH", "").split(os.pathsep):
            for name in names:
                candidate = os.path.join(directory or ".", name)
                if self.is_executable(candidate):
                    return candidate
        return None

    def os_release(self) -> dict[str, str]:
        """``/etc/os-release`` (os-release(5)) as ``{KEY: value}``, quotes removed; {} when
        missing (macOS has none)."""
        values: dict[str, str] = {}
        for line in (self.read_text("/etc/os-release") or "").splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() and not key.lstrip().startswith("#"):
                values[key.strip()] = value.strip().strip("'\"")
        return values

    def is_debian_like(self) -> bool:
        """True on Debian and its derivatives (Ubuntu…): ``ID`` or ``ID_LIKE`` in
        ``/etc/os-release`` names ``debian`` (so ``apt-get`` installs packages)."""
        release = self.os_release()
        return "debian" in (release.get("ID", "") + " " + release.get("ID_LIKE", "")).split()

    def has_systemd(self) -> bool:
        """True when systemd is the running init: ``/run/systemd/system`` exists (sd_booted(3));
        WSL2 has it only with ``[boot] systemd=true`` in ``/etc/wsl.conf``."""
        return self.exists("/run/systemd/system")

    def mounts(self) -> list[Mount]:
        """Mounted filesystems: ``/proc/self/mountinfo`` on Linux, ``/sbin/mount`` on macOS."""
        if self.system == "Darwin":
            result = self.run(["/sbin/mount"], timeout=5.0)
            return parse_bsd_mount(result.stdout) if result.ok else []
        return parse_mountinfo(self.read_text("/proc/self/mountinfo") or "")

    def mount_of(self, path: str | os.PathLike[str]) -> Mount | None:
        """The mount holding ``path`` (longest mount-point prefix), or None when unknown."""
        text = os.path.abspath(os.fspath(path))
        best: Mount | None = None
        for mount in self.mounts():
            point = mount.point.rstrip("/") or "/"
            inside = text == point or text.startswith(point.rstrip("/") + "/")
            if inside and (best is None or len(point) >= len(best.point.rstrip("/") or "/")):
                best = mount
        return best


class RecordedHost(Host):
    """A host replayed from a recording (``tests/hosts/*.json``), for platforms not at hand.

    Keys: ``system``, ``machine``, ``env``, ``files`` (path → text), ``dirs`` (paths that exist),
    ``executables`` (paths), ``run`` (``" ".join(argv)`` → ``{returncode, stdout, stderr}``).
    Commands not in the recording give ``RunResult(error="… not in the recording")``.
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        """Use ``data`` (deep-copied) as the recording."""
        self.data: dict[str, Any] = copy.deepcopy(dict(data))
        super().__init__(self.data.get("env", {}))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RecordedHost:
        """Load a recording. Raises OSError or ValueError on a missing or malformed file."""
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def derive(self, **changes: Mapping[str, Any]) -> RecordedHost:
        """A copy with ``env``/``files``/``run`` entries merged in (a None value deletes a key)."""
        data = copy.deepcopy(self.data)
        for key, entries in changes.items():
            if isinstance(data.get(key), list):
                data[key] = [*entries, *data[key]]
                continue
            target = data.setdefault(key, {})
            for name, value in entries.items():
                if value is None:
                    target.pop(name, None)
                else:
                    target[name] = value
        return RecordedHost(data)

    @property
    def system(self) -> str:
        """The recorded ``platform.system()``."""
        return str(self.data.get("system", "Linux"))

    @property
    def machine(self) -> str:
        """The recorded ``platform.machine()``."""
        return str(self.data.get("machine", "x86_64"))

    def read_text(self, path: str) -> str | None:
        """The recorded content of ``path``, or None."""
        value = self.data.get("files", {}).get(path)
        return None if value is None else str(value)

    def exists(self, path: str) -> bool:
        """True for recorded files, directories and executables."""
        return (path in self.data.get("files", {}) or path in self.data.get("dirs", [])
                or path in self.data.get("executables", []))

    def is_executable(self, path: str) -> bool:
        """True for recorded executables."""
        return path in self.data.get("executables", [])

    def list_dir(self, path: str) -> list[str]:
        """Names of recorded files directly inside ``path``."""
        prefix = path.rstrip("/") + "/"
        names = {p[len(prefix):] for p in self.data.get("files", {}) if p.startswith(prefix)}
        return sorted(n for n in names if n and "/" not in n)

    def run(
        self,
        cmd: Sequence[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> RunResult:
        """The recorded result of ``cmd`` (``cwd``/``env`` are ignored)."""
        entry = self.data.get("run", {}).get(" ".join(cmd))
        if entry is None:
            return RunResult(-1, error=f"`{' '.join(cmd)}` is not in the recording")
        return RunResult(int(entry.get("returncode", 0)), entry.get("stdout", ""),
                         entry.get("stderr", ""))


def parse_mountinfo(text: str) -> list[Mount]:
    """Parse ``/proc/self/mountinfo`` (proc(5)): mount point is field 5, type and the per-superblock
    options follow the `` - `` separator (WSL2 drvfs: ``9p … aname=drvfs;path=C:\\``)."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, extra = left.split(), right.split()
        if not sep or len(fields) < 6 or not extra:
            continue
        point = fields[4].replace("\\040", " ").replace("\\011", "\t")
        options = ",".join(o for o in (fields[5], extra[2] if len(extra) > 2 else "") if o)
        mounts.append(Mount(point, extra[0], options))
    return mounts


def parse_bsd_mount(text: str) -> list[Mount]:
    """Parse macOS ``/sbin/mount`` lines: ``/dev/disk3s1s1 on / (apfs, sealed, local, …)``."""
    mounts = []
    for line in text.splitlines():
        _, sep, rest = line.partition(" on ")
        point, sep2, opts = rest.rpartition(" (")
        if not sep or not sep2:
            continue
        parts = [p.strip() for p in opts.rstrip(")").split(",")]
        mounts.append(Mount(point, parts[0], ",".join(parts[1:])))
    return mounts
