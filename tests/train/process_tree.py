"""The processes a test started, found from the launcher's pid, so that a test signals nothing
else on a shared machine (test_stop.py, test_hang.py)."""
import os


def descendants(root):
    """Every process below `root` (so that the test signals only what it started)."""
    children = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = open("/proc/%s/stat" % pid).read()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2:].split()[1])  # after "pid (comm) state"
        children.setdefault(parent, []).append(int(pid))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def rank_pid(launcher_pid, rank):
    """The pid of `rank` among the processes mpiexec `launcher_pid` started."""
    for pid in descendants(launcher_pid):
        try:
            environ = open("/proc/%d/environ" % pid, "rb").read().split(b"\0")
            cmdline = open("/proc/%d/cmdline" % pid, "rb").read()
        except OSError:
            continue
        if (b"OMPI_COMM_WORLD_RANK=%d" % rank) in environ and b"train" in cmdline:
            return pid
    return None
