#!/usr/bin/env python3
"""Self-test of powercutfs: mounts it on a temporary directory and checks that
it keeps exactly what was made durable and forgets the rest.

Run as root:  python3 tests/powercut/selftest.py [-k NAME] [-v]

Prints one line per check and, last, "N passed, M failed". Exit status 0 only
when every check passed and the file system unmounted cleanly.
"""

import argparse
import ctypes
import errno
import fcntl
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
FS = os.path.join(HERE, "powercutfs.py")
KiB = 1024


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


class Mount:
    def __init__(self, base):
        self.base = base
        self.mnt = os.path.join(base, "mnt")
        self.sock = os.path.join(base, "ctl.sock")
        self.logpath = os.path.join(base, "powercutfs.log")
        os.mkdir(self.mnt)
        self.log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, FS, self.mnt, "--control", self.sock],
            stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready()
        except BaseException:
            self.unmount()
            raise

    def _wait_ready(self):
        deadline = time.monotonic() + 15
        while not self.mounted():
            if self.proc.poll() is not None:
                raise RuntimeError("powercutfs exited with %s:\n%s"
                                   % (self.proc.returncode, self.log_text()))
            if time.monotonic() > deadline:
                raise RuntimeError("mount did not show up in /proc/mounts")
            time.sleep(0.05)
        while self.ctl_raw("ping") != "ok":
            if time.monotonic() > deadline:
                raise RuntimeError("control socket does not answer")
            time.sleep(0.05)

    def mounted(self):
        with open("/proc/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 1 and fields[1] == self.mnt:
                    return True
        return False

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def ctl_raw(self, cmd):
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(30)
            s.connect(self.sock)
        except OSError:
            return None
        with s:
            s.sendall(cmd.encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
        return buf.decode().strip()

    def ctl(self, cmd):
        r = self.ctl_raw(cmd)
        if r is None or not r.startswith("ok"):
            raise Fail("control %r answered %r" % (cmd, r))
        return r

    def crash(self, how=""):
        r = self.ctl(("crash " + how).strip())
        parts = r.split()
        check(len(parts) == 3, "crash reply %r" % r)
        return int(parts[1]), int(parts[2])

    def stats(self):
        r = self.ctl("stats")
        return dict(kv.split("=") for kv in r.split()[1:])

    def p(self, *names):
        return os.path.join(self.mnt, *names)

    def unmount(self):
        ok = True
        if self.proc.poll() is None:
            for cmd in (["umount", self.mnt], ["umount", "-l", self.mnt]):
                if subprocess.run(cmd, capture_output=True).returncode == 0:
                    break
                ok = False
                time.sleep(0.2)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                ok = False
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        if self.proc.returncode != 0:
            ok = False
        self.log.close()
        return ok


# ---------------------------------------------------------------- helpers
def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path, data, sync=True, mode="wb"):
    with open(path, mode) as f:
        f.write(data)
        f.flush()
        if sync:
            os.fsync(f.fileno())


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def fresh_dir(m, name):
    """A directory whose own existence is durable (root fsynced)."""
    d = m.p(name)
    os.mkdir(d)
    fsync_dir(m.mnt)
    return d


def pattern(tag, n):
    r = random.Random(tag)
    return bytes(r.getrandbits(8) for _ in range(n))


# ---------------------------------------------------------------- checks
def check_a_fsynced_survives(m):
    d = fresh_dir(m, "a")
    data = pattern("a", 100 * KiB + 7)
    write_file(os.path.join(d, "f"), data)
    fsync_dir(d)
    m.crash()
    check(read_file(os.path.join(d, "f")) == data, "content differs after crash")
    check(os.stat(os.path.join(d, "f")).st_size == len(data), "size differs")


def check_b_unsynced_tail_lost(m):
    d = fresh_dir(m, "b")
    f = os.path.join(d, "f")
    base = pattern("b1", 10000)
    write_file(f, base)
    fsync_dir(d)
    fd = os.open(f, os.O_RDWR)
    os.pwrite(fd, b"X" * 500, 100)          # overwrite inside
    os.pwrite(fd, pattern("b2", 20000), 10000)  # append
    os.close(fd)
    check(os.stat(f).st_size == 30000, "size before crash")
    _, forgotten = m.crash()
    check(forgotten == 20500, "bytes_forgotten %d != 20500" % forgotten)
    check(read_file(f) == base, "content not back to fsynced version")
    check(os.stat(f).st_size == len(base), "size not back")
    # an unsynced truncate is undone too
    fd = os.open(f, os.O_RDWR)
    os.ftruncate(fd, 10)
    os.truncate(f, 5)
    os.close(fd)
    check(os.stat(f).st_size == 5, "truncate did not apply")
    m.crash()
    check(read_file(f) == base, "unsynced truncate survived the crash")


def check_c_name_needs_dir_fsync(m):
    d = fresh_dir(m, "c")
    f = os.path.join(d, "new")
    write_file(f, b"hello")
    check(os.path.exists(f), "file missing before crash")
    affected, _ = m.crash()
    check(not os.path.exists(f), "file survived although its dir was not fsynced")
    check("new" not in os.listdir(d), "name still listed")
    check(affected == 1, "n_files_affected %d != 1" % affected)
    # mkdir without fsync of the parent vanishes too; unlink without it is undone
    os.mkdir(os.path.join(d, "sub"))
    write_file(os.path.join(d, "keep"), b"k")
    fsync_dir(d)
    os.unlink(os.path.join(d, "keep"))
    os.rmdir(os.path.join(d, "sub"))
    os.mkdir(os.path.join(d, "sub2"))
    m.crash()
    check(sorted(os.listdir(d)) == ["keep", "sub"],
          "after crash dir lists %r" % sorted(os.listdir(d)))
    check(read_file(os.path.join(d, "keep")) == b"k", "unlinked file lost its data")
    check(os.stat(d).st_nlink == 3, "dir nlink %d != 3" % os.stat(d).st_nlink)


def check_d_rename(m):
    d = fresh_dir(m, "d")
    old, new = os.path.join(d, "old"), os.path.join(d, "new")
    write_file(old, b"v1")
    fsync_dir(d)
    os.rename(old, new)
    m.crash()
    check(os.path.exists(old) and not os.path.exists(new),
          "rename without dir fsync was not undone")
    check(read_file(old) == b"v1", "old content")
    os.rename(old, new)
    fsync_dir(d)
    m.crash()
    check(not os.path.exists(old) and read_file(new) == b"v1",
          "rename with dir fsync did not stay")
    # the write-temp-then-rename-over pattern
    tmp = os.path.join(d, "new.tmp")
    write_file(tmp, b"v2")
    os.rename(tmp, new)
    check(read_file(new) == b"v2", "rename over existing file")
    m.crash()
    check(read_file(new) == b"v1" and not os.path.exists(tmp),
          "rename over without dir fsync was not undone")
    write_file(tmp, b"v3")
    os.rename(tmp, new)
    fsync_dir(d)
    m.crash()
    check(read_file(new) == b"v3" and os.listdir(d) == ["new"],
          "rename over with dir fsync: %r" % os.listdir(d))
    # across directories both parents need an fsync
    d2 = fresh_dir(m, "d2")
    os.rename(new, os.path.join(d2, "moved"))
    fsync_dir(d2)
    fsync_dir(d)
    m.crash()
    check(os.listdir(d) == [] and read_file(os.path.join(d2, "moved")) == b"v3",
          "cross-directory rename")


def check_e_sync_file_range_not_durable(m):
    d = fresh_dir(m, "e")
    f = os.path.join(d, "f")
    write_file(f, b"durable")
    fsync_dir(d)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64,
                                     ctypes.c_int64, ctypes.c_uint]
    fd = os.open(f, os.O_RDWR)
    os.pwrite(fd, b"-not-durable", 7)
    rc = libc.sync_file_range(fd, 0, 0, 7)   # WAIT_BEFORE|WRITE|WAIT_AFTER
    check(rc == 0, "sync_file_range failed: %s" % os.strerror(ctypes.get_errno()))
    os.close(fd)
    check(m.stats()["dirty_bytes"] == "12", "stats after sync_file_range %r" % m.stats())
    m.crash()
    check(read_file(f) == b"durable", "sync_file_range made data durable")


def _torn_setup(m, name):
    d = fresh_dir(m, name)
    f = os.path.join(d, "log")
    base = pattern(name + "base", 64 * KiB)
    write_file(f, base)
    fsync_dir(d)
    tail = b""
    fd = os.open(f, os.O_WRONLY | os.O_APPEND)
    for i in range(10):
        chunk = pattern("%s-%d" % (name, i), 4 * KiB)
        os.write(fd, chunk)
        tail += chunk
    os.close(fd)
    return f, base, tail


def check_f_torn(m):
    lengths = []
    for seed in (1, 2, 3, 4, 5, 6, 7, 8):
        f, base, tail = _torn_setup(m, "f%d" % seed)
        st = m.stats()
        check(st["dirty_files"] == "1" and st["dirty_bytes"] == str(40 * KiB),
              "before torn crash: %r" % st)
        affected, forgotten = m.crash("torn %d" % seed)
        got = read_file(f)
        n = len(got) - len(base)
        check(64 * KiB <= len(got) < 64 * KiB + 40 * KiB,
              "seed %d: length %d out of range" % (seed, len(got)))
        check(got == (base + tail)[:len(got)], "seed %d: content is not a prefix" % seed)
        check(forgotten == 40 * KiB - n, "seed %d: bytes_forgotten %d" % (seed, forgotten))
        check(affected == 1, "seed %d: n_files_affected %d" % (seed, affected))
        lengths.append(n)
    check(len(set(lengths)) > 1, "torn lengths never vary: %r" % lengths)
    # same seed, same workload -> same result
    f, base, tail = _torn_setup(m, "f-again")
    m.crash("torn 3")
    first = read_file(f)
    os.unlink(f)
    fsync_dir(os.path.dirname(f))
    f2, base2, tail2 = _torn_setup(m, "f-again2")
    m.crash("torn 3")
    check(len(read_file(f2)) == len(first), "torn not deterministic")


def _subset_run(m, name, seed):
    d = fresh_dir(m, name)
    f = os.path.join(d, "db")
    nregions = 64
    base = b"\0" * (nregions * 2 * KiB)
    write_file(f, base)
    fsync_dir(d)
    fd = os.open(f, os.O_RDWR)
    new = {}
    for i in range(nregions):
        chunk = pattern("%s" % i, 1 * KiB)   # same data in both runs
        os.pwrite(fd, chunk, i * 2 * KiB)    # 1 KiB at a 512-aligned offset
        new[i] = chunk
    os.close(fd)
    m.crash("subset %d" % seed)
    got = read_file(f)
    check(len(got) == len(base), "subset changed the size")
    states = []
    for i in range(nregions):
        region = got[i * 2 * KiB:i * 2 * KiB + KiB]
        check(got[i * 2 * KiB + KiB:(i + 1) * 2 * KiB] == b"\0" * KiB,
              "bytes outside any write changed")
        if region == new[i]:
            states.append("full")
        elif region == b"\0" * KiB:
            states.append("none")
        elif region == new[i][:512] + b"\0" * 512:
            states.append("half")
        else:
            raise Fail("region %d is neither old, new nor cut at 512 bytes" % i)
    return got, states


def check_g_subset(m):
    got1, states1 = _subset_run(m, "g1", 1234)
    got2, states2 = _subset_run(m, "g2", 1234)
    kept = sum(s != "none" for s in states1)
    check(0 < kept < len(states1), "subset kept %d of %d writes" % (kept, len(states1)))
    check(got1 == got2, "same seed gave different results")
    got3, _ = _subset_run(m, "g3", 99)
    check(got3 != got1, "different seed gave the same result")


def check_h_no_stale_cache(m):
    d = fresh_dir(m, "h")
    f = os.path.join(d, "f")
    base = pattern("h", 3 * 4096)
    write_file(f, base)
    fsync_dir(d)
    fd = os.open(f, os.O_RDWR)
    check(os.read(fd, 100000) == base, "first read")
    os.pwrite(fd, b"Z" * 4096, 0)
    os.pwrite(fd, b"Y" * 8192, len(base))
    fd2 = os.open(f, os.O_RDONLY)
    check(os.pread(fd2, 100000, 0) == b"Z" * 4096 + base[4096:] + b"Y" * 8192,
          "second fd does not see the new data")
    os.close(fd2)
    check(os.stat(f).st_size == len(base) + 8192, "stat before crash")
    m.crash()
    check(os.stat(f).st_size == len(base), "stat shows stale size after crash")
    fd3 = os.open(f, os.O_RDONLY)
    got = os.pread(fd3, 100000, 0)
    os.close(fd3)
    check(got == base, "new fd sees stale data after crash")
    # The fd from before the crash is dead (documented behaviour).
    try:
        os.pread(fd, 10, 0)
        raise Fail("read through a pre-crash fd did not fail")
    except OSError as e:
        check(e.errno == errno.EIO, "pre-crash fd: %s" % e)
    finally:
        os.close(fd)
    # A name that vanished is not served from the dentry cache.
    f2 = os.path.join(d, "g")
    write_file(f2, b"x")
    os.stat(f2)
    m.crash()
    check(not os.path.exists(f2), "vanished file still visible")


def check_i_fdatasync(m):
    d = fresh_dir(m, "i")
    f = os.path.join(d, "f")
    fd = os.open(f, os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"A" * 5000)
    os.fdatasync(fd)
    os.write(fd, b"B" * 5000)
    os.close(fd)
    fsync_dir(d)
    m.crash()
    check(read_file(f) == b"A" * 5000, "fdatasync: got %d bytes" % len(read_file(f)))


def check_j_unlinked_open_file(m):
    d = fresh_dir(m, "j")
    f = os.path.join(d, "f")
    write_file(f, b"still here", sync=False)
    fd = os.open(f, os.O_RDWR)
    try:
        os.unlink(f)
        check(not os.path.exists(f), "unlinked name still exists")
        check(os.listdir(d) == [], "dir lists %r (hidden files?)" % os.listdir(d))
        check(os.pread(fd, 100, 0) == b"still here", "cannot read unlinked file")
        os.pwrite(fd, b"!", 10)
        check(os.pread(fd, 100, 0) == b"still here!", "cannot write unlinked file")
        st = os.fstat(fd)
        check(st.st_size == 11 and st.st_nlink == 0, "fstat %r" % (st,))
        os.ftruncate(fd, 5)
        os.fsync(fd)
        check(os.fstat(fd).st_size == 5, "ftruncate of unlinked file")
    finally:
        os.close(fd)
    # a reader keeps the old version when a new one is renamed over it
    g = os.path.join(d, "g")
    write_file(g, b"old version")
    fd = os.open(g, os.O_RDONLY)
    try:
        write_file(g + ".tmp", b"new")
        os.rename(g + ".tmp", g)
        check(os.listdir(d) == ["g"], "listing %r" % os.listdir(d))
        check(read_file(g) == b"new", "new version by name")
        check(os.pread(fd, 100, 0) == b"old version", "old fd lost the old version")
        check(os.fstat(fd).st_size == 11, "fstat of renamed-over file")
    finally:
        os.close(fd)
    check(os.listdir(d) == ["g"], "listing after close %r" % os.listdir(d))


def check_k_flock(m):
    d = fresh_dir(m, "k")
    f = os.path.join(d, "LOCK")
    write_file(f, b"")
    fd1 = os.open(f, os.O_RDWR)
    fd2 = os.open(f, os.O_RDWR)
    try:
        fcntl.flock(fd1, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            fcntl.flock(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)
            raise Fail("second exclusive flock succeeded")
        except BlockingIOError:
            pass
        fcntl.flock(fd1, fcntl.LOCK_UN)
        fcntl.flock(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.lockf(fd1, fcntl.LOCK_EX | fcntl.LOCK_NB)   # POSIX lock works too
    finally:
        os.close(fd1)
        os.close(fd2)


def check_l_o_dsync_and_fallocate(m):
    d = fresh_dir(m, "l")
    f = os.path.join(d, "f")
    fd = os.open(f, os.O_CREAT | os.O_WRONLY | os.O_DSYNC, 0o644)
    os.write(fd, b"sync write")
    os.close(fd)
    fsync_dir(d)
    fd = os.open(f, os.O_RDWR)
    os.posix_fallocate(fd, 0, 1 << 20)
    check(os.fstat(fd).st_size == 1 << 20, "fallocate did not extend")
    check(os.pread(fd, 20, 0) == b"sync write" + b"\0" * 10, "fallocate content")
    os.close(fd)
    m.crash()
    check(read_file(f) == b"sync write", "O_DSYNC write or fallocate rollback wrong")


def check_m_nlink_symlink_link(m):
    d = fresh_dir(m, "m")
    os.mkdir(os.path.join(d, "s1"))
    os.mkdir(os.path.join(d, "s2"))
    check(os.stat(d).st_nlink == 4, "dir nlink %d" % os.stat(d).st_nlink)
    f = os.path.join(d, "f")
    write_file(f, b"data")
    os.link(f, os.path.join(d, "hard"))
    check(os.stat(f).st_nlink == 2, "file nlink after link")
    os.symlink("f", os.path.join(d, "sym"))
    check(os.readlink(os.path.join(d, "sym")) == "f", "readlink")
    check(read_file(os.path.join(d, "sym")) == b"data", "read via symlink")
    fsync_dir(d)
    os.unlink(f)
    m.crash()
    check(os.stat(f).st_nlink == 2, "nlink after crash %d" % os.stat(f).st_nlink)
    check(sorted(os.listdir(d)) == ["f", "hard", "s1", "s2", "sym"], "listing")
    for bad, exc in ((lambda: os.rmdir(d), OSError), (lambda: os.unlink(os.path.join(d, "s1")), OSError),
                     (lambda: os.mkdir(os.path.join(d, "s1")), FileExistsError)):
        try:
            bad()
            raise Fail("expected an error")
        except exc as e:
            check(e.errno in (errno.ENOTEMPTY, errno.EISDIR, errno.EEXIST, errno.EPERM),
                  "errno %s" % e)
    os.chmod(f, 0o600)
    check(os.stat(f).st_mode & 0o777 == 0o600, "chmod")
    os.utime(f, ns=(1_000_000_000, 2_000_000_000))
    check(os.stat(f).st_mtime_ns == 2_000_000_000, "utime")
    sv = os.statvfs(m.mnt)
    check(sv.f_bavail * sv.f_frsize >= 7 << 30, "statfs free space")


def check_n_random_workload(m):
    """Random pwrite/truncate/fsync/rename-over/dir-fsync against a model of
    what must be durable; after each crash the files must match the model."""
    d = fresh_dir(m, "n")
    rng = random.Random(42)
    names = ["f%d" % i for i in range(4)]
    cur = {}       # name -> bytearray (visible state)
    dur = {}       # name -> durable bytes of the inode behind the name
    dir_dur = {}   # durable namespace: name -> key of inode
    ino_cur = {}   # name -> inode key
    ino_data_dur = {}  # inode key -> durable bytes
    nextkey = [0]
    fds = {}

    def newkey():
        nextkey[0] += 1
        return nextkey[0]

    for rnd in range(6):
        for step in range(300):
            op = rng.random()
            name = rng.choice(names)
            path = os.path.join(d, name)
            if name not in cur:
                fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
                fds[name] = fd
                cur[name] = bytearray()
                k = newkey()
                ino_cur[name] = k
                ino_data_dur[k] = b""
                continue
            if name not in fds:
                fds[name] = os.open(path, os.O_RDWR)
            fd = fds[name]
            if op < 0.55:
                off = rng.randrange(0, len(cur[name]) + 5000)
                data = bytes([rng.randrange(256)]) * rng.randrange(1, 3000)
                os.pwrite(fd, data, off)
                buf = cur[name]
                if off > len(buf):
                    buf.extend(bytes(off - len(buf)))
                buf[off:off + len(data)] = data
            elif op < 0.62:
                size = rng.randrange(0, len(cur[name]) + 100)
                os.ftruncate(fd, size)
                buf = cur[name]
                if size < len(buf):
                    del buf[size:]
                else:
                    buf.extend(bytes(size - len(buf)))
            elif op < 0.80:
                (os.fsync if rng.random() < 0.5 else os.fdatasync)(fd)
                ino_data_dur[ino_cur[name]] = bytes(cur[name])
            elif op < 0.90:
                other = rng.choice(names)
                if other != name:
                    os.close(fd)
                    del fds[name]
                    if other in fds:
                        os.close(fds.pop(other))
                    os.rename(path, os.path.join(d, other))
                    cur[other] = cur.pop(name)
                    ino_cur[other] = ino_cur.pop(name)
            else:
                fsync_dir(d)
                dir_dur = dict(ino_cur)
        for fd in fds.values():
            os.close(fd)
        fds.clear()
        m.crash()
        listing = sorted(os.listdir(d))
        check(listing == sorted(dir_dur), "round %d: names %r != %r"
              % (rnd, listing, sorted(dir_dur)))
        for name, k in dir_dur.items():
            got = read_file(os.path.join(d, name))
            check(got == ino_data_dur[k], "round %d: %s has %d bytes, want %d"
                  % (rnd, name, len(got), len(ino_data_dur[k])))
        cur = {n: bytearray(ino_data_dur[k]) for n, k in dir_dur.items()}
        ino_cur = dict(dir_dur)


def check_o_speed(m):
    d = fresh_dir(m, "o")
    f = os.path.join(d, "f")
    fd = os.open(f, os.O_CREAT | os.O_RDWR, 0o644)
    t = time.monotonic()
    n = 3000
    for i in range(n):
        os.pwrite(fd, b"x" * 200, i * 200)
        if i % 10 == 9:
            os.fdatasync(fd)
    dt = time.monotonic() - t
    os.close(fd)
    rate = n / dt
    print("      (%.0f small writes/s with an fdatasync every 10)" % rate)
    check(rate > 300, "only %.0f writes/s" % rate)


CHECKS = [
    ("a) fsynced file in fsynced dir survives crash", check_a_fsynced_survives),
    ("b) unsynced writes and truncates are forgotten", check_b_unsynced_tail_lost),
    ("c) names need a dir fsync (create, mkdir, unlink, rmdir)", check_c_name_needs_dir_fsync),
    ("d) rename undone without dir fsync, kept with it", check_d_rename),
    ("e) sync_file_range does not make data durable", check_e_sync_file_range_not_durable),
    ("f) crash torn keeps a strict prefix of unsynced appends", check_f_torn),
    ("g) crash subset keeps some writes, deterministically", check_g_subset),
    ("h) no stale kernel cache after crash; old fds get EIO", check_h_no_stale_cache),
    ("i) fdatasync makes data durable like fsync", check_i_fdatasync),
    ("j) unlinked-but-open file stays usable through its fd", check_j_unlinked_open_file),
    ("k) flock LOCK_EX|LOCK_NB and lockf work", check_k_flock),
    ("l) O_DSYNC writes are durable; fallocate is rolled back", check_l_o_dsync_and_fallocate),
    ("m) nlink, hard links, symlinks, errno, chmod, utime, statfs", check_m_nlink_symlink_link),
    ("n) random workload matches a durability model", check_n_random_workload),
    ("o) speed of small writes", check_o_speed),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-k", help="run only checks whose title contains this")
    ap.add_argument("-v", action="store_true", help="print tracebacks")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("selftest: must run as root (mounting FUSE)", file=sys.stderr)
        return 2
    base = tempfile.mkdtemp(prefix="powercut-selftest-")
    passed = failed = 0
    m = None
    try:
        m = Mount(base)
        for title, fn in CHECKS:
            if args.k and args.k not in title:
                continue
            try:
                fn(m)
                passed += 1
                print("PASS %s" % title)
            except Exception as e:
                failed += 1
                print("FAIL %s: %s: %s" % (title, type(e).__name__, e))
                if args.v:
                    traceback.print_exc()
            sys.stdout.flush()
    except Exception as e:
        failed += 1
        print("FAIL mount: %s" % e)
        if not isinstance(e, RuntimeError):
            traceback.print_exc()
    finally:
        if m is not None:
            if not m.unmount():
                failed += 1
                print("FAIL unmount: powercutfs did not stop cleanly (rc=%s)"
                      % m.proc.returncode)
            log = m.log_text().strip()
            if log:
                print("--- powercutfs log ---\n" + log)
        shutil.rmtree(base, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
