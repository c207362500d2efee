"""Is an orchestra running on a state directory? What `orchestra store migrate` asks before it touches
the cluster kept there.

Owns `servers_on(state_dir)`: the live processes that serve the state directory's cluster, found in
/proc (app/leftovers.py's one scan):
* an `orchestra up` (`orchestra up ...` or `python -m orchestra up ...`) whose state directory -
  `--state-dir DIR` / `--state-dir=DIR` on its command line, else its ORCHESTRA_STATE_DIR, else the
  default under its XDG_DATA_HOME or HOME (cli/config.py's) - is this one (paths resolved against its
  working directory, symlinks followed);
* the local etcd of `--store etcd` (app/etcdlocal.py) on `<state-dir>/etcd/data` while its parent
  lives (an orphan, init's child, is stopped by the next start; it serves nobody).
A server started another way (run_cluster() from Python) is not seen here; with the durable store it
holds its log's lock (store/log.py), which the migration takes too, so it is refused all the same.
Must not import: cli.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestra.app.etcdlocal import etcds_on
from orchestra.app.leftovers import processes

STATE_DIR_ENV = "ORCHESTRA_STATE_DIR"


def servers_on(state_dir: Path, proc: Path = Path("/proc")) -> list[str]:
    """What runs on `state_dir`: one line per process ("orchestra up (pid 123)")."""
    wanted = os.path.realpath(state_dir)
    found = []
    for pid, _ppid, argv in processes(proc):
        if pid == os.getpid():
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if is_orchestra_up(args) and state_dir_of(pid, args, proc) == wanted:
            found.append(f"orchestra up (pid {pid})")
    for pid, ppid in etcds_on(state_dir / "etcd" / "data", proc):
        if ppid != 1:
            found.append(f"its local etcd (pid {pid}, parent {ppid})")
    return found


def is_orchestra_up(args: list[str]) -> bool:
    """`.../orchestra up ...`, `python .../orchestra up ...` or `python -m orchestra up ...`."""
    for i, arg in enumerate(args):
        if arg == "up":
            return any(Path(a).name == "orchestra" for a in args[:i])
        if Path(arg).name not in ("orchestra", "-m") and i > 0 and not arg.startswith("-"):
            return False  # an argument before the command that is not orchestra's: another program
    return False


def state_dir_of(pid: int, args: list[str], proc: Path = Path("/proc")) -> str | None:
    """The real path of the state directory an `orchestra up` process uses (None: unknown)."""
    given = None
    for i, arg in enumerate(args):
        if arg == "--state-dir" and i + 1 < len(args):
            given = args[i + 1]
        elif arg.startswith("--state-dir="):
            given = arg.partition("=")[2]
    try:
        cwd = os.readlink(proc / str(pid) / "cwd")
        if given is None:
            given = _default_state_dir(_environ(proc / str(pid) / "environ"))
    except OSError:  # exited meanwhile, or not ours to read
        return None
    return os.path.realpath(os.path.join(cwd, os.path.expanduser(given))) if given else None


def _environ(path: Path) -> dict[str, str]:
    env = {}
    for item in path.read_bytes().split(b"\0"):
        name, sep, value = item.decode(errors="replace").partition("=")
        if sep:
            env[name] = value
    return env


def _default_state_dir(env: dict[str, str]) -> str | None:
    """cli/config.py's default_state_dir() as that process computes it (platformdirs on Linux)."""
    if env.get(STATE_DIR_ENV):
        return env[STATE_DIR_ENV]
    data = env.get("XDG_DATA_HOME", "").strip()
    if data:
        return os.path.join(data, "orchestra")
    home = env.get("HOME")
    return os.path.join(home, ".local", "share", "orchestra") if home else None
