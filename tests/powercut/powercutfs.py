#!/usr/bin/env python3
"""powercutfs: an in-memory FUSE file system that can simulate a power cut.

What it is for
--------------
Tests mount it, run the program under test (here: the water-meter daemon and its
store) on it, kill the program, then tell the file system over a control socket
to "crash". The crash forgets everything that the program did not make durable
with fsync/fdatasync (for file data) and fsync of the directory (for names).
Restarting the program on the same mount then shows whether everything it
acknowledged as durable survived. The idea follows LazyFS ("When Amnesia
Strikes", VLDB 2024), but much smaller and in Python.

Model (everything lives in memory; the file system starts empty)
----------------------------------------------------------------
* A file has ``data`` (what reads see now), ``durable`` (what survives a crash)
  and the ordered list of operations (writes and size changes) made since its
  last fsync.
* ``fsync`` and ``fdatasync`` of a file make its data and size durable. They do
  NOT make its directory entry durable. A write through a descriptor opened
  with O_SYNC/O_DSYNC is made durable at once, like a write followed by
  fdatasync.
* A directory has ``entries`` (what lookups see now) and ``durable_entries``.
  fsync of the directory makes its entries durable. create, unlink, rename,
  mkdir, rmdir, link and symlink are lost by a crash unless the parent
  directory (both parents for a rename between directories) was fsynced
  afterwards.
* ``sync_file_range``, ``sync``/``syncfs`` and ``msync`` do not reach a FUSE
  file system, so they make nothing durable (on a real disk sync_file_range
  gives no durability either).
* Control command ``crash``: every file's data := durable, every directory's
  entries := durable_entries; files and directories no longer reachable vanish.
  ``crash torn SEED``: like crash, but for one file with unsynced writes (chosen
  at random) a random prefix of its unsynced operations is kept, and the last
  kept write is cut at a random byte. ``crash subset SEED``: every unsynced
  write of every file is kept independently with probability 1/2 (applied in
  order over the durable data); a kept write may be cut at a 512-byte boundary.
  Size changes (truncate, fallocate) are always kept in subset mode. Both are
  deterministic for a given seed and the same sequence of operations.
* File handles opened before a crash are dead after it: read, write, fsync and
  fstat through them fail with EIO (the machine "rebooted"; kill the program
  under test before or right after the crash).

What it does not do
-------------------
* No persistence to a real disk: unmounting or stopping the process loses all.
* No reordering across files beyond ``crash subset``; namespace changes are
  always either all kept (fsynced directory) or all lost, per directory.
* A real journaling file system (ext4, xfs) usually commits much more than
  asked (e.g. a file fsync often also commits its new name). This model is
  deliberately the strict POSIX reading, so it may lose things a real disk
  would keep, never the other way round.
* Metadata durability is not modelled: mode, owner and times are never
  rolled back; only content, size and names are.
* No xattrs, no POSIX ACLs, no mknod of devices/FIFOs, no shared writable
  mmap (the mount uses direct_io, so MAP_SHARED mmap fails with ENODEV).
  Locks (flock, fcntl) are handled locally by the kernel and work.
* A name starting with ".fuse_hidden" is reserved: libfuse renames a file
  that is unlinked (or renamed over) while still open to such a name and
  unlinks it at the last close; the model treats that rename as the unlink.
* One global lock, one FUSE thread: correct, not fast (the selftest sees
  10,000-90,000 small writes per second on an idle machine).
* ``umount`` fails with EBUSY while any process has a file open on the mount;
  SIGTERM then still stops the file system (libfuse detaches lazily).

Usage
-----
    python3 powercutfs.py MOUNTPOINT --control SOCKET_PATH [--debug]

Runs in the foreground until ``umount MOUNTPOINT`` or SIGTERM/SIGINT.

Control protocol: connect to the Unix stream socket SOCKET_PATH, send one line,
read one line, the server closes. Commands:

    ping                 -> ok
    stats                -> ok files=<n> dirty_files=<n> dirty_bytes=<n>
    crash                -> ok <n_files_affected> <bytes_forgotten>
    crash torn SEED      -> ok <n_files_affected> <bytes_forgotten>
    crash subset SEED    -> ok <n_files_affected> <bytes_forgotten>
    sync                 -> ok          (make everything durable)
    anything else        -> err <reason>

``n_files_affected`` counts files that vanished (their name was not durable)
plus files whose content or size changed;
``bytes_forgotten`` counts bytes of unsynced writes that were not kept.
"""

import argparse
import errno
import logging
import os
import random
import signal
import socket
import stat
import sys
import threading
import time
import ctypes

try:  # Debian's python3-fusepy names the module "fusepy"; pip's names it "fuse".
    import fusepy as _fuse
except ImportError:
    try:
        import fuse as _fuse
        if not hasattr(_fuse, "FUSE") or not hasattr(_fuse, "fuse_file_info"):
            raise ImportError("'fuse' is not fusepy")
    except ImportError:
        # A Python from pyenv etc. does not see Debian's dist-packages.
        sys.path.append("/usr/lib/python3/dist-packages")
        import fusepy as _fuse

FuseOSError = _fuse.FuseOSError
fuse_file_info = _fuse.fuse_file_info

UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10
FS_BYTES = 8 << 30          # statfs: 8 GiB, all free
SECTOR = 512
HIDDEN_PREFIX = ".fuse_hidden"

log = logging.getLogger("powercutfs")


# --------------------------------------------------------------------------
# fusepy 3.0.1 stops its struct fuse_operations at ioctl; libfuse 2.9 goes on
# with poll, write_buf, read_buf, flock and fallocate. Add them so that
# fallocate reaches us (the others stay NULL: locks are then kernel-local).
# --------------------------------------------------------------------------
def _extend_fuse_operations():
    names = [f[0] for f in _fuse.fuse_operations._fields_]
    if "fallocate" in names:
        return
    fields = list(_fuse.fuse_operations._fields_)
    for extra in ("poll", "write_buf", "read_buf", "flock"):
        if extra not in names:
            fields.append((extra, ctypes.c_voidp))
    fields.append(("fallocate", ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.c_char_p, ctypes.c_int, _fuse.c_off_t,
        _fuse.c_off_t, ctypes.POINTER(fuse_file_info))))

    class fuse_operations(ctypes.Structure):
        _fields_ = fields

    _fuse.fuse_operations = fuse_operations


_extend_fuse_operations()


class _FUSE(_fuse.FUSE):
    def fallocate(self, path, mode, offset, length, fip):
        fi = fip.contents if self.raw_fi else fip.contents.fh
        return self.operations("fallocate", self._decode_optional_path(path),
                               mode, offset, length, fi)


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------
def _apply_write(buf, off, data):
    n = len(buf)
    if off > n:
        buf.extend(bytes(off - n))
    buf[off:off + len(data)] = data


def _apply_size(buf, size):
    n = len(buf)
    if size < n:
        del buf[size:]
    elif size > n:
        buf.extend(bytes(size - n))


def _apply(buf, op):
    if op[0] == "w":
        _apply_write(buf, op[1], op[2])
    else:
        _apply_size(buf, op[1])


class Inode:
    __slots__ = ("ino", "mode", "uid", "gid", "nlink", "atime", "mtime",
                 "ctime", "data", "durable", "pending", "pending_bytes",
                 "entries", "durable_entries", "nsubdirs", "target", "opens",
                 "hidden")

    def __init__(self, ino, mode, uid, gid):
        now = time.time_ns()
        self.ino = ino
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.nlink = 0          # files: names pointing here; dirs: unused
        self.atime = self.mtime = self.ctime = now
        self.opens = 0
        self.target = None
        self.data = self.durable = self.pending = None
        self.pending_bytes = 0
        self.entries = self.durable_entries = None
        self.hidden = None      # dirs: libfuse's .fuse_hidden* names
        self.nsubdirs = 0
        if stat.S_ISREG(mode):
            self.data = bytearray()
            self.durable = bytearray()
            self.pending = []
        elif stat.S_ISDIR(mode):
            self.entries = {}
            self.durable_entries = {}
            self.hidden = {}

    @property
    def is_dir(self):
        return stat.S_ISDIR(self.mode)

    @property
    def is_reg(self):
        return stat.S_ISREG(self.mode)

    def size(self):
        if self.data is not None:
            return len(self.data)
        if self.target is not None:
            return len(self.target.encode())
        return 4096

    # --- file data ---
    def write(self, off, data):
        _apply_write(self.data, off, data)
        self.pending.append(("w", off, data))
        self.pending_bytes += len(data)
        self.mtime = self.ctime = time.time_ns()

    def set_size(self, size):
        if size == len(self.data):
            return
        _apply_size(self.data, size)
        self.pending.append(("t", size))
        self.mtime = self.ctime = time.time_ns()

    def sync(self):
        """fsync/fdatasync: durable := data, pending cleared."""
        if not self.pending:
            return
        # Apply the pending ops to the durable copy when that is cheaper than
        # copying the whole file (a big log with small appends).
        if self.pending_bytes + 64 * len(self.pending) < len(self.data):
            for op in self.pending:
                _apply(self.durable, op)
        else:
            self.durable = bytearray(self.data)
        self.pending = []
        self.pending_bytes = 0


class Handle:
    __slots__ = ("inode", "flags")

    def __init__(self, inode, flags):
        self.inode = inode
        self.flags = flags


def _fh_of(fi):
    """The fh number inside a fuse_file_info, or None (NULL pointer etc.)."""
    if isinstance(fi, fuse_file_info):
        return fi.fh
    if isinstance(fi, int) and not isinstance(fi, bool):
        return fi
    return None


def _err(code):
    return FuseOSError(code)


# Names fusepy looks up on the operations object; only these are dispatched.
FUSE_OPS = frozenset("""
    init destroy getattr access statfs mkdir rmdir opendir readdir releasedir
    fsyncdir create mknod unlink rename link symlink readlink chmod chown
    utimens open read write truncate fallocate fsync flush release
""".split())


class PowerCutFS:
    use_ns = True
    # Ops that have a file handle get path=NULL: they work on the handle's
    # inode, which stays right after rename and unlink.
    flag_nullpath_ok = 1
    flag_nopath = 1

    def __init__(self):
        self.mutex = threading.RLock()
        self.next_ino = 1
        self.next_fh = 1
        self.root = self._new_inode(stat.S_IFDIR | 0o755, 0, 0)
        self.inodes = {self.root.ino: self.root}
        self.handles = {}       # fh -> Handle (files)
        self.dirhandles = {}    # fh -> Inode (directories)
        self.crashes = 0

    def __call__(self, op, *args):
        if op not in FUSE_OPS:
            raise _err(errno.ENOSYS)
        fn = getattr(self, op)
        with self.mutex:
            return fn(*args)

    # ---------------- helpers ----------------
    def _new_inode(self, mode, uid, gid):
        ino = Inode(self.next_ino, mode, uid, gid)
        self.next_ino += 1
        return ino

    def _ctx(self):
        try:
            uid, gid, _pid = _fuse.fuse_get_context()
            return uid, gid
        except Exception:
            return 0, 0

    def _lookup(self, path):
        if path is None:
            raise _err(errno.ENOENT)
        node = self.root
        for part in path.split("/"):
            if not part:
                continue
            if not node.is_dir:
                raise _err(errno.ENOTDIR)
            child = node.entries.get(part)
            if child is None:
                child = node.hidden.get(part)
                if child is None:
                    raise _err(errno.ENOENT)
            node = child
        return node

    def _parent(self, path):
        head, _, name = path.rpartition("/")
        parent = self._lookup(head or "/")
        if not parent.is_dir:
            raise _err(errno.ENOTDIR)
        if not name:
            raise _err(errno.EINVAL)
        return parent, name

    def _handle(self, fi):
        h = self.handles.get(_fh_of(fi))
        if h is None:
            raise _err(errno.EIO)   # opened before a crash, or unknown
        return h

    def _node(self, path, fi):
        fh = _fh_of(fi)
        if fh is not None:
            if fh in self.handles:
                return self.handles[fh].inode
            if fh in self.dirhandles:
                return self.dirhandles[fh]
            if path is None:
                raise _err(errno.EIO)
        return self._lookup(path)

    def _link_into(self, parent, name, inode):
        parent.entries[name] = inode
        if inode.is_dir:
            parent.nsubdirs += 1
        else:
            inode.nlink += 1
        self.inodes[inode.ino] = inode
        parent.mtime = parent.ctime = time.time_ns()

    def _unlink_from(self, parent, name):
        inode = parent.entries.pop(name)
        parent.mtime = parent.ctime = time.time_ns()
        if inode.is_dir:
            parent.nsubdirs -= 1
            self.inodes.pop(inode.ino, None)
        else:
            inode.nlink -= 1
            inode.ctime = time.time_ns()
            if inode.nlink <= 0 and inode.opens <= 0:
                self.inodes.pop(inode.ino, None)
        return inode

    def _new_handle(self, inode, flags):
        fh = self.next_fh
        self.next_fh += 1
        self.handles[fh] = Handle(inode, flags)
        inode.opens += 1
        return fh

    # ---------------- FUSE operations ----------------
    def init(self, path):
        return None

    def destroy(self, path):
        return None

    def getattr(self, path, fh=None):
        node = self._node(path, fh)
        if node.is_dir:
            nlink = 2 + node.nsubdirs
        else:
            nlink = node.nlink
        size = node.size()
        return {
            "st_ino": node.ino, "st_mode": node.mode, "st_nlink": nlink,
            "st_uid": node.uid, "st_gid": node.gid, "st_size": size,
            "st_atime": node.atime, "st_mtime": node.mtime,
            "st_ctime": node.ctime, "st_blksize": 4096,
            "st_blocks": (size + 511) // 512,
        }

    def access(self, path, amode):
        self._lookup(path)
        return 0

    def statfs(self, path):
        blocks = FS_BYTES // 4096
        used = sum((len(i.data) + 4095) // 4096 for i in self.inodes.values()
                   if i.data is not None)
        free = max(blocks - used, 0)
        return {
            "f_bsize": 4096, "f_frsize": 4096, "f_blocks": blocks,
            "f_bfree": free, "f_bavail": free, "f_files": 1 << 20,
            "f_ffree": (1 << 20) - len(self.inodes), "f_favail": (1 << 20) - len(self.inodes),
            "f_namemax": 255,
        }

    def _make(self, path, mode, parent=None, name=None):
        """A new inode of `mode` under the free name `path` (EEXIST if taken)."""
        if parent is None:
            parent, name = self._parent(path)
            if name in parent.entries:
                raise _err(errno.EEXIST)
        uid, gid = self._ctx()
        node = self._new_inode(mode, uid, gid)
        self._link_into(parent, name, node)
        return node

    # --- directories ---
    def mkdir(self, path, mode):
        self._make(path, stat.S_IFDIR | (mode & 0o7777))
        return 0

    def rmdir(self, path):
        parent, name = self._parent(path)
        node = parent.entries.get(name)
        if node is None:
            raise _err(errno.ENOENT)
        if not node.is_dir:
            raise _err(errno.ENOTDIR)
        if node.entries:
            raise _err(errno.ENOTEMPTY)
        self._unlink_from(parent, name)
        return 0

    def opendir(self, path):
        node = self._lookup(path)
        if not node.is_dir:
            raise _err(errno.ENOTDIR)
        fh = self.next_fh
        self.next_fh += 1
        self.dirhandles[fh] = node
        return fh

    def readdir(self, path, fh):
        node = self.dirhandles.get(fh)
        if node is None:
            if path is None:
                raise _err(errno.EIO)
            node = self._lookup(path)
        if not node.is_dir:
            raise _err(errno.ENOTDIR)
        out = [".", ".."]
        for name, child in node.entries.items():
            out.append((name, {"st_ino": child.ino, "st_mode": child.mode}, 0))
        return out

    def releasedir(self, path, fh):
        self.dirhandles.pop(fh, None)
        return 0

    def fsyncdir(self, path, datasync, fh):
        node = self.dirhandles.get(fh)
        if node is None:
            if path is None:
                raise _err(errno.EIO)
            node = self._lookup(path)
        if not node.is_dir:
            raise _err(errno.ENOTDIR)
        node.durable_entries = dict(node.entries)
        return 0

    # --- names ---
    def create(self, path, mode, fi):
        parent, name = self._parent(path)
        node = parent.entries.get(name)
        if node is not None:
            if fi.flags & os.O_EXCL:
                raise _err(errno.EEXIST)
            if node.is_dir:
                raise _err(errno.EISDIR)
            if fi.flags & os.O_TRUNC:
                node.set_size(0)
        else:
            node = self._make(path, stat.S_IFREG | (mode & 0o7777), parent, name)
        fi.fh = self._new_handle(node, fi.flags)
        fi.direct_io = 1
        fi.keep_cache = 0
        return 0

    def mknod(self, path, mode, dev):
        if not stat.S_ISREG(mode):
            raise _err(errno.EPERM)
        self._make(path, stat.S_IFREG | (mode & 0o7777))
        return 0

    def unlink(self, path):
        parent, name = self._parent(path)
        if name in parent.hidden:
            # libfuse drops a hidden name at the last close (see rename).
            node = parent.hidden.pop(name)
            if node.nlink <= 0 and node.opens <= 0 \
                    and self.inodes.get(node.ino) is node:
                del self.inodes[node.ino]
            return 0
        node = parent.entries.get(name)
        if node is None:
            raise _err(errno.ENOENT)
        if node.is_dir:
            raise _err(errno.EISDIR)
        self._unlink_from(parent, name)
        return 0

    def rename(self, old, new):
        oparent, oname = self._parent(old)
        nparent, nname = self._parent(new)
        src = oparent.entries.get(oname)
        if src is None:
            raise _err(errno.ENOENT)
        if nname.startswith(HIDDEN_PREFIX) and oparent is nparent:
            # libfuse "unlinks" a file that is still open by renaming it to
            # .fuse_hiddenXXXX, so that fstat etc. still find it by path, and
            # unlinks that name at the last close. For the model it is an
            # unlink now; the name is only kept for libfuse's lookups.
            if src.is_dir:
                raise _err(errno.EISDIR)
            old_entry = nparent.entries.get(nname)
            if old_entry is not None:
                raise _err(errno.EEXIST)
            self._unlink_from(oparent, oname)
            self.inodes[src.ino] = src
            nparent.hidden[nname] = src
            return 0
        dst = nparent.entries.get(nname)
        if dst is src:
            return 0
        if src.is_dir and (new + "/").startswith(old.rstrip("/") + "/"):
            raise _err(errno.EINVAL)
        if dst is not None:
            if dst.is_dir:
                if not src.is_dir:
                    raise _err(errno.EISDIR)
                if dst.entries:
                    raise _err(errno.ENOTEMPTY)
            elif src.is_dir:
                raise _err(errno.ENOTDIR)
            self._unlink_from(nparent, nname)
        # Move: detach without dropping the inode, then attach.
        del oparent.entries[oname]
        if src.is_dir:
            oparent.nsubdirs -= 1
            nparent.nsubdirs += 1
        nparent.entries[nname] = src
        now = time.time_ns()
        oparent.mtime = oparent.ctime = nparent.mtime = nparent.ctime = now
        src.ctime = now
        return 0

    def link(self, new, existing):
        node = self._lookup(existing)
        if node.is_dir:
            raise _err(errno.EPERM)
        parent, name = self._parent(new)
        if name in parent.entries:
            raise _err(errno.EEXIST)
        self._link_into(parent, name, node)
        node.ctime = time.time_ns()
        return 0

    def symlink(self, path, target):
        node = self._make(path, stat.S_IFLNK | 0o777)
        node.target = target
        return 0

    def readlink(self, path):
        node = self._lookup(path)
        if node.target is None:
            raise _err(errno.EINVAL)
        return node.target

    # --- metadata ---
    def chmod(self, path, mode):
        node = self._lookup(path)
        node.mode = stat.S_IFMT(node.mode) | (mode & 0o7777)
        node.ctime = time.time_ns()
        return 0

    def chown(self, path, uid, gid):
        node = self._lookup(path)
        if uid != -1:
            node.uid = uid
        if gid != -1:
            node.gid = gid
        node.ctime = time.time_ns()
        return 0

    def utimens(self, path, times=None):
        node = self._lookup(path)
        now = time.time_ns()
        if times is None:
            node.atime = node.mtime = now
        else:
            at, mt = (int(t) for t in times)
            if at == UTIME_NOW:
                node.atime = now
            elif at != UTIME_OMIT:
                node.atime = at
            if mt == UTIME_NOW:
                node.mtime = now
            elif mt != UTIME_OMIT:
                node.mtime = mt
        node.ctime = now
        return 0

    # --- file data ---
    def open(self, path, fi):
        node = self._lookup(path)
        if node.is_dir:
            raise _err(errno.EISDIR)
        if not node.is_reg:
            raise _err(errno.EINVAL)
        if fi.flags & os.O_TRUNC and (fi.flags & os.O_ACCMODE) != os.O_RDONLY:
            node.set_size(0)
        fi.fh = self._new_handle(node, fi.flags)
        fi.direct_io = 1
        fi.keep_cache = 0
        return 0

    def read(self, path, size, offset, fi):
        node = self._handle(fi).inode
        node.atime = time.time_ns()
        return bytes(node.data[offset:offset + size])

    def write(self, path, data, offset, fi):
        h = self._handle(fi)
        node = h.inode
        if h.flags & os.O_APPEND:
            offset = len(node.data)
        node.write(offset, data)
        if h.flags & os.O_DSYNC:       # O_SYNC includes the O_DSYNC bit
            node.sync()
        return len(data)

    def truncate(self, path, length, fh=None):
        if _fh_of(fh) is not None:
            node = self._handle(fh).inode
        else:
            node = self._lookup(path)
        if node.is_dir:
            raise _err(errno.EISDIR)
        if not node.is_reg:
            raise _err(errno.EINVAL)
        if length < 0:
            raise _err(errno.EINVAL)
        node.set_size(length)
        return 0

    def fallocate(self, path, mode, offset, length, fi):
        node = self._handle(fi).inode
        if offset < 0 or length <= 0:
            raise _err(errno.EINVAL)
        end = offset + length
        size = len(node.data)
        keep = bool(mode & FALLOC_FL_KEEP_SIZE)
        if mode & FALLOC_FL_PUNCH_HOLE:
            if not keep:
                raise _err(errno.EOPNOTSUPP)
            zend = min(end, size)
            if zend > offset:
                node.write(offset, bytes(zend - offset))
            return 0
        if mode & FALLOC_FL_ZERO_RANGE:
            zend = end if not keep else min(end, size)
            if zend > offset:
                node.write(offset, bytes(zend - offset))
            return 0
        if mode & ~FALLOC_FL_KEEP_SIZE:
            raise _err(errno.EOPNOTSUPP)
        if not keep and end > size:
            node.set_size(end)
        return 0

    def fsync(self, path, datasync, fi):
        self._handle(fi).inode.sync()
        return 0

    def flush(self, path, fi):
        return 0

    def release(self, path, fi):
        h = self.handles.pop(_fh_of(fi), None)
        if h is not None:
            node = h.inode
            node.opens -= 1
            if node.nlink <= 0 and node.opens <= 0 \
                    and self.inodes.get(node.ino) is node:
                del self.inodes[node.ino]
        return 0

    # ---------------- control ----------------
    def _reachable_rebuild(self):
        """After entries were reset: recompute the inode table, link counts
        and subdirectory counts from what is reachable from the root. A
        directory reachable twice (possible when only one side of a
        cross-directory rename was made durable) keeps its first name."""
        table = {}
        seen_files = set()
        queue = [self.root]
        table[self.root.ino] = self.root
        while queue:
            d = queue.pop(0)
            d.nsubdirs = 0
            for name in sorted(d.entries):
                child = d.entries[name]
                if child.is_dir:
                    if child.ino in table:
                        del d.entries[name]
                        d.durable_entries.pop(name, None)
                        continue
                    table[child.ino] = child
                    d.nsubdirs += 1
                    queue.append(child)
                else:
                    if child.ino not in seen_files:
                        seen_files.add(child.ino)
                        child.nlink = 0
                        table[child.ino] = child
                    child.nlink += 1
        for node in table.values():
            node.opens = 0
        self.inodes = table

    def crash(self, mode="plain", seed=0):
        rng = random.Random(seed)
        self.crashes += 1
        before = {n.ino for n in self.inodes.values() if n.is_reg and n.nlink > 0}
        # Every handle from before the power cut is dead.
        self.handles = {}
        self.dirhandles = {}
        # Namespace: back to what was fsynced, directory by directory. Walk
        # all directory objects that could become reachable (including ones
        # only referenced by durable entries).
        stack = [self.root]
        seen = set()
        while stack:
            d = stack.pop()
            if d.ino in seen:
                continue
            seen.add(d.ino)
            for child in list(d.entries.values()) + list(d.durable_entries.values()):
                if child.is_dir and child.ino not in seen:
                    stack.append(child)
            d.entries = dict(d.durable_entries)
            d.hidden = {}
        self._reachable_rebuild()

        files = sorted((n for n in self.inodes.values() if n.is_reg),
                       key=lambda n: n.ino)
        new_data = {}
        forgotten = 0
        if mode == "plain":
            for n in files:
                forgotten += n.pending_bytes
        elif mode == "torn":
            dirty = [n for n in files if any(op[0] == "w" for op in n.pending)]
            victim = rng.choice(dirty) if dirty else None
            for n in files:
                if n is not victim:
                    forgotten += n.pending_bytes
            if victim is not None:
                idx = [i for i, op in enumerate(victim.pending) if op[0] == "w"]
                i = rng.choice(idx)
                buf = bytearray(victim.durable)
                for op in victim.pending[:i]:
                    _apply(buf, op)
                kept = sum(len(op[2]) for op in victim.pending[:i] if op[0] == "w")
                _, off, data = victim.pending[i]
                cut = rng.randrange(len(data)) if data else 0
                if cut:
                    _apply_write(buf, off, data[:cut])
                kept += cut
                forgotten += victim.pending_bytes - kept
                new_data[victim.ino] = buf
        elif mode == "subset":
            for n in files:
                if not n.pending:
                    continue
                buf = bytearray(n.durable)
                kept = 0
                for op in n.pending:
                    if op[0] != "w":
                        _apply(buf, op)         # size changes always kept
                        continue
                    if rng.random() >= 0.5:
                        continue
                    _, off, data = op
                    end = off + len(data)
                    first = (off // SECTOR + 1) * SECTOR
                    bounds = range(first, end, SECTOR)   # strictly inside
                    if len(bounds) and rng.random() < 0.5:
                        data = data[:rng.choice(bounds) - off]
                    _apply_write(buf, off, data)
                    kept += len(data)
                forgotten += n.pending_bytes - kept
                new_data[n.ino] = buf
        else:
            raise ValueError("unknown crash mode %r" % mode)

        # Files that lost their name count as affected, like changed ones.
        affected = len(before - {n.ino for n in files})
        for n in files:
            buf = new_data.get(n.ino)
            if buf is None:
                buf = bytearray(n.durable)
            if buf != n.data:
                affected += 1
            n.data = buf
            n.durable = bytearray(buf)
            n.pending = []
            n.pending_bytes = 0
        return affected, forgotten

    def sync_all(self):
        for n in list(self.inodes.values()):
            if n.is_reg:
                n.sync()
        stack, seen = [self.root], set()
        while stack:
            d = stack.pop()
            if d.ino in seen:
                continue
            seen.add(d.ino)
            d.durable_entries = dict(d.entries)
            stack.extend(c for c in d.entries.values() if c.is_dir)

    def stats(self):
        files = dirty = dirty_bytes = 0
        for n in self.inodes.values():
            if not n.is_reg:
                continue
            if n.nlink > 0:
                files += 1
            if n.pending:
                dirty += 1
                dirty_bytes += n.pending_bytes
        return files, dirty, dirty_bytes

    def command(self, line):
        words = line.split()
        if not words:
            return "err empty command"
        cmd = words[0]
        try:
            with self.mutex:
                if cmd == "ping" and len(words) == 1:
                    return "ok"
                if cmd == "stats" and len(words) == 1:
                    return "ok files=%d dirty_files=%d dirty_bytes=%d" % self.stats()
                if cmd == "sync" and len(words) == 1:
                    self.sync_all()
                    return "ok"
                if cmd == "crash":
                    if len(words) == 1:
                        res = self.crash("plain")
                    elif len(words) == 3 and words[1] in ("torn", "subset"):
                        res = self.crash(words[1], int(words[2], 0))
                    else:
                        return "err usage: crash [torn SEED | subset SEED]"
                    log.info("crash %s -> %s", " ".join(words[1:]) or "plain", res)
                    return "ok %d %d" % res
        except Exception as e:  # never kill the control thread
            log.exception("control command %r failed", line)
            return "err %s" % e
        return "err unknown command %r" % line


def serve_control(fs, srv):
    # Leave SIGTERM/SIGINT/SIGHUP to the FUSE loop in the main thread.
    signal.pthread_sigmask(signal.SIG_BLOCK,
                           {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    while True:
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        try:
            with conn:
                conn.settimeout(30)
                buf = b""
                while b"\n" not in buf and len(buf) < 4096:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                line = buf.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
                conn.sendall((fs.command(line) + "\n").encode())
        except OSError as e:
            log.warning("control connection: %s", e)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mountpoint")
    ap.add_argument("--control", required=True, metavar="SOCKET_PATH",
                    help="Unix socket for ping/stats/crash/sync commands")
    ap.add_argument("--debug", action="store_true",
                    help="log every FUSE request (libfuse -d)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.debug else logging.WARNING,
                        format="powercutfs: %(levelname)s %(message)s")

    fs = PowerCutFS()
    try:
        os.unlink(args.control)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(args.control)
    srv.listen(16)
    threading.Thread(target=serve_control, args=(fs, srv), daemon=True,
                     name="control").start()
    try:
        _FUSE(fs, args.mountpoint, raw_fi=True,
              foreground=True, nothreads=True, debug=args.debug,
              fsname="powercutfs", subtype="powercutfs",
              direct_io=True, attr_timeout=0, entry_timeout=0,
              negative_timeout=0, use_ino=True,
              big_writes=True)
    finally:
        srv.close()
        try:
            os.unlink(args.control)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
