"""Hosts on one machine: Linux network namespaces joined by veth pairs to a
bridge in a "switch" namespace, each host with one address in 198.18.0.0/24
(RFC 2544's benchmarking range), a range that exists only inside the
namespaces: the machine's own services (PostgreSQL on 5432, Redis on 6379)
are unreachable from them, and nothing here is reachable from the machine.

    with Network(["a", "b"]) as net:
        with net.inside("b"):      # this thread's sockets and children live on b
            worker = stack.start_worker()
        net.cut("b")               # b's cable pulled at the switch: silence
        net.mend("b")

`inside` moves only the calling thread (setns(2) is per thread); threads and
processes started in it stay on that host for their whole life.
"""

import contextlib
import ctypes
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator

CLONE_NEWNET = 0x40000000
SUBNET = "198.18.0"
_libc = ctypes.CDLL(None, use_errno=True)
# /usr/sbin, which a minimal PATH may leave out.
IP = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin") or "ip"


def _ip(*args: str) -> None:
    subprocess.run([IP, *args], check=True, capture_output=True, timeout=10)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def _port(host: str) -> str:
    # `dev` before every name: `ip link set a …` would read `a` as `address`.
    return f"port-{host}"


def unavailable() -> str | None:
    """Why this machine cannot make namespaces (not root, no CAP_NET_ADMIN,
    no iproute2), or None when it can."""
    probe = f"whmh{os.getpid()}-probe"
    try:
        _ip("netns", "add", probe)
    except FileNotFoundError:
        return "iproute2's `ip` is not installed (make test installs it as root)"
    except subprocess.CalledProcessError as exc:
        reason = exc.stderr.decode(errors="replace").strip()
        return f"`ip netns add` failed (needs root or CAP_NET_ADMIN): {reason}"
    _ip("netns", "del", probe)
    return None


def remove_stale() -> None:
    """Remove what a run of this suite killed before its clean-up left: the
    namespaces named after a process id that no longer exists."""
    listed = subprocess.run(
        [IP, "netns", "list"], capture_output=True, text=True, timeout=10
    ).stdout
    for line in listed.splitlines():
        name = line.split(" ", 1)[0]
        match = re.fullmatch(r"whmh(\d+)-\w+", name)
        if match and not os.path.exists(f"/proc/{match.group(1)}"):
            _remove(name)


def _remove(name: str) -> None:
    # A process left in a namespace keeps it alive after `del`: end them (they
    # were started by this suite, in this namespace) first.
    pids = subprocess.run(
        [IP, "netns", "pids", name], capture_output=True, text=True, timeout=10
    ).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), 9)
    subprocess.run([IP, "netns", "del", name], capture_output=True, timeout=10)


class Network:
    """One namespace per host plus the switch; close() deletes them all after
    killing whatever still runs in them (only this run's namespaces: their
    names carry this process's id)."""

    def __init__(self, hosts: Iterable[str]) -> None:
        self.prefix = f"whmh{os.getpid()}-"
        self.hosts = list(hosts)
        self.switch = self.prefix + "switch"
        self.addresses = {
            host: f"{SUBNET}.{n}" for n, host in enumerate(self.hosts, start=1)
        }
        self._created: list[str] = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "Network":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def address(self, host: str) -> str:
        return self.addresses[host]

    def namespace(self, host: str) -> str:
        return self.prefix + host

    @contextlib.contextmanager
    def inside(self, host: str) -> Iterator[None]:
        """Run the block with this thread on `host`: the sockets it opens,
        the threads and processes it starts are there; then back."""
        back = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        there = os.open(f"/run/netns/{self.namespace(host)}", os.O_RDONLY)
        try:
            _setns(there)
            try:
                yield
            finally:
                _setns(back)
        finally:
            os.close(there)
            os.close(back)

    def cut(self, host: str) -> None:
        """Pull the host's cable at the switch: its packets and the packets
        for it are dropped without an answer (no reset, no refusal)."""
        _ip("-n", self.switch, "link", "set", "dev", _port(host), "down")

    def mend(self, host: str) -> None:
        _ip("-n", self.switch, "link", "set", "dev", _port(host), "up")

    def close(self) -> None:
        for name in reversed(self._created):
            _remove(name)
        self._created.clear()

    def _build(self) -> None:
        self._add(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "dev", "br0", "up")
        for host in self.hosts:
            ns = self.namespace(host)
            self._add(ns)
            _ip("-n", ns, "link", "set", "dev", "lo", "up")
            # Made under names unique to this run, then moved and renamed: the
            # switch's end is port-<host>, the host's end eth0.
            port, cable = f"w{os.getpid()}{host}s", f"w{os.getpid()}{host}h"
            _ip("link", "add", "name", port, "type", "veth", "peer", "name", cable)
            _ip("link", "set", "dev", cable, "netns", ns, "name", "eth0")
            _ip("link", "set", "dev", port, "netns", self.switch, "name", _port(host))
            _ip("-n", self.switch, "link", "set", "dev", _port(host), "master", "br0")
            _ip("-n", self.switch, "link", "set", "dev", _port(host), "up")
            _ip("-n", ns, "addr", "add", f"{self.addresses[host]}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "dev", "eth0", "up")

    def _add(self, name: str) -> None:
        _ip("netns", "add", name)
        self._created.append(name)
