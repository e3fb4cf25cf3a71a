"""A seccomp filter for bwrap: refuse (EPERM) the system calls a graded program never needs."""

from __future__ import annotations

import functools
import logging
import platform
import struct

log = logging.getLogger(__name__)

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EPERM = 1
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_RET_K = 0x06
ARCH_OFFSET = 4
NR_OFFSET = 0

# x86_64 numbers: debugging and memory access of other processes, mounts and namespaces, kernel
# keyrings, BPF, perf, io_uring, handles, modules, kexec, swap, reboot, accounting, quota, syslog.
DENIED_X86_64 = {
    "ptrace": 101, "syslog": 103, "acct": 163, "chroot": 161, "pivot_root": 155, "mount": 165,
    "umount2": 166, "swapon": 167, "swapoff": 168, "reboot": 169, "init_module": 175,
    "delete_module": 176, "quotactl": 179, "lookup_dcookie": 212, "kexec_load": 246,
    "add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272, "perf_event_open": 298,
    "fanotify_init": 300, "name_to_handle_at": 303, "open_by_handle_at": 304, "setns": 308,
    "process_vm_readv": 310, "process_vm_writev": 311, "finit_module": 313,
    "kexec_file_load": 320, "bpf": 321, "userfaultfd": 323, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428, "move_mount": 429,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
}


def _instruction(code: int, k: int, jump_true: int = 0, jump_false: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jump_true, jump_false, k)


@functools.lru_cache(maxsize=1)
def seccomp_program() -> bytes | None:
    """Return the compiled filter for this machine, or None where no syscall table is known."""
    if platform.machine() != "x86_64":
        log.warning("no seccomp syscall table for %s: the sandbox runs without its filter",
                    platform.machine())
        return None
    numbers = sorted(DENIED_X86_64.values())
    deny = _instruction(BPF_RET_K, SECCOMP_RET_ERRNO | EPERM)
    program = [
        _instruction(BPF_LD_W_ABS, ARCH_OFFSET),
        # Other ABIs (i386 through int 0x80) have other numbers: refuse them all.
        _instruction(BPF_JEQ_K, AUDIT_ARCH_X86_64, jump_true=1),
        deny,
        _instruction(BPF_LD_W_ABS, NR_OFFSET),
        _instruction(BPF_JGE_K, X32_SYSCALL_BIT, jump_true=len(numbers) + 1),
    ]
    for position, number in enumerate(numbers):
        program.append(_instruction(BPF_JEQ_K, number, jump_true=len(numbers) - position))
    program += [_instruction(BPF_RET_K, SECCOMP_RET_ALLOW), deny]
    return b"".join(program)
