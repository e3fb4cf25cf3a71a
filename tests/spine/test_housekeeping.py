"""Housekeeping of a worker host: unused trees, abandoned workspaces and scratch go, mirrors
get packed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from pipeline import repos
from pipeline.celery_app import visibility_timeout_seconds
from pipeline.config import load_settings
from pipeline.grading.cache import ReferenceCache
from pipeline.housekeeping import (DAY_SECONDS, HousekeepingTimer, _host_lock, run_workspace,
                                   sweep)
from pipeline.repos import RepositoryCache
from pipeline.sandbox import cgroup
from tests.grading.builders import make_assignment
from tests.infra.gitrepos import git
from tests.infra.ledger import migrated_resources
from tests.infra.processes import gradehook_argv, wait_for, worker_process, write_config
from tests.sandbox.conftest import RESULT_PATH, host_processes_with, programs_with

# A process that makes a run's cgroups, as the sandbox does, and is killed holding them.
MAKE_GROUPS_AND_DIE = """
import os
import signal
import sys
sys.path.insert(0, {root!r})
from pipeline.sandbox.cgroup import RunCgroup
group = RunCgroup.create(64 * 1024 * 1024, 8)
print(*group.dirs.values(), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""

OLD = time.time() - 30 * DAY_SECONDS
SCRATCH_KINDS = {"gradehook-mounts"} if os.geteuid() == 0 else \
    set()  # mounts are copied only for a root worker's sandbox user
# A process running a sandbox, as a worker's pool process does, until it is killed.
SANDBOX_PROCESS = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from pipeline.sandbox import Mount, run_sandboxed
from tests.sandbox.conftest import SMALL_LIMITS
result = run_sandboxed(["python", "-c", "import time; time.sleep(600)", {marker!r}],
                       workdir=Path({work!r}), mounts=[Mount(Path({tests!r}), "/mnt/tests")],
                       limits=SMALL_LIMITS.with_overrides(timeout_seconds=600),
                       result_path={result_path!r})
print(result.signal, flush=True)
"""

# A process building matplotlib's font cache for an interpreter, as a worker's pool process does
# before a run that plots, until it is killed.
FONT_CACHE_PROCESS = """
import sys
sys.path.insert(0, {root!r})
from pipeline.grading.fontcache import font_cache_dir
font_cache_dir({python!r})
"""


@pytest.fixture(autouse=True)
def temporary_folder(own_temporary_folder: Path) -> Path:
    """Sweep a temporary folder of this test's own."""
    return own_temporary_folder


@pytest.fixture
def config(tmp_path, git_server):
    return write_config(tmp_path / "etc", {
        "data_dir": str(tmp_path / "data"), "gitlab": {"clone_base": git_server.base_url},
        "worker": {"tree_max_idle_days": 7}})


@pytest.fixture
def settings(config):
    return load_settings(config, environ={})


@pytest.fixture
def cache(settings):
    return RepositoryCache(settings.repository_cache, settings.gitlab.git_base)


def _age(path: Path, moment: float = OLD) -> None:
    os.utime(path, (moment, moment))


def _tree_folder(cache: RepositoryCache, sha: str) -> Path:
    """Return the folder of a reference commit's tree, as a run takes it: its files, and the
    paths left out of them."""
    return cache.tree("staff/reference", sha).parent


def _packs(mirror: Path) -> int:
    return len(list((mirror / "objects" / "pack").glob("*.pack")))


def _kinds(folder: Path) -> set[str]:
    """Return the kinds of scratch in a temporary folder: their names without mkdtemp's suffix."""
    return {name.rsplit("-", 1)[0] for name in os.listdir(folder)}


@contextlib.contextmanager
def _sandbox_process(tmp_path: Path, name: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """Run a process whose sandbox runs until killed; yield it, once the program runs, and the
    marker on the program's command line."""
    marker = f"sleeping-{os.getpid()}-{tmp_path.name}-{name}"
    work, tests = tmp_path / name / "work", tmp_path / name / "tests"
    for folder in (work, tests):
        folder.mkdir(parents=True)
    (tests / "test_hidden.py").write_text("EXPECTED = 42\n")
    script = tmp_path / name / "sandbox_process.py"  # not on the command line: the marker is
    script.write_text(SANDBOX_PROCESS.format(
        root=str(Path(__file__).resolve().parents[2]), marker=marker, work=str(work),
        tests=str(tests), result_path=RESULT_PATH))
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE)
    try:
        wait_for(lambda: programs_with(marker) or process.poll() is not None,
                 what="the sandboxed program to start")
        assert process.poll() is None, "the sandbox process ended before its program ran"
        yield process, marker
    finally:
        process.kill()
        process.wait()
        for pid in host_processes_with(marker):
            os.kill(pid, signal.SIGKILL)


def test_trees_unused_for_the_idle_days_are_removed_and_used_ones_kept(settings, cache,
                                                                       git_server):
    old_sha = git_server.commit("staff/reference", {"week1/a/test.yaml": "1\n"})
    cache.ensure_commit("staff/reference", old_sha)
    unused = _tree_folder(cache, old_sha)
    new_sha = git_server.commit("staff/reference", {"week1/a/test.yaml": "2\n"})
    cache.ensure_commit("staff/reference", new_sha)
    used = _tree_folder(cache, new_sha)
    older = unused.parent / old_sha  # as a gradehook extracting by older rules named it
    (older / "week1").mkdir(parents=True)
    for tree in (unused, used, older):
        _age(tree)
    assert _tree_folder(cache, new_sha) == used  # a run takes it again: it is used

    report = sweep(settings, cache)

    assert report.trees_removed == 2 and not unused.exists() and not older.exists()
    assert (used / "files" / "week1" / "a" / "test.yaml").read_text() == "2\n"
    assert [p.name for p in used.parent.iterdir()] == [used.name]  # nothing half-removed left


def test_reference_results_unused_for_the_idle_days_are_removed(settings, cache):
    results = ReferenceCache(settings.reference_cache)
    old, used = results.key("old"), results.key("used")
    for key in (old, used):
        results.get_or_compute(key, lambda: {"outcome": "cached"})  # leaves a lock file too
    old_entry = settings.reference_cache / old[:2] / f"{old}.json"
    used_entry = settings.reference_cache / used[:2] / f"{used}.json"
    half_written = used_entry.parent / ".tmp-died.json"
    half_written.write_text("{")
    for path in (old_entry, used_entry, half_written):
        _age(path)
    assert results.get(used) == {"outcome": "cached"}  # a grading reads it: it is used

    report = sweep(settings, cache)

    assert report.reference_results_removed == 1
    assert not old_entry.exists() and not old_entry.with_suffix(".lock").exists()
    assert not half_written.exists()
    assert results.get(used) == {"outcome": "cached"}


def test_workspaces_no_live_run_holds_are_removed(settings, cache):
    settings.workspace.mkdir(parents=True)
    killed = settings.workspace / "run-r1-abc"  # its worker died: the mark is there, unheld
    (killed / "student").mkdir(parents=True)
    (killed / ".in-use").touch()
    unmarked_old = settings.workspace / "run-r2-def"
    unmarked_young = settings.workspace / "run-r3-ghi"
    other = settings.workspace / "notes"
    for folder in (unmarked_old, unmarked_young, other):
        folder.mkdir()
    for folder in (unmarked_old, other):
        _age(folder)
    # Younger than the hard time limit plus the retries' waits: a run may still be in it.
    _age(unmarked_young, time.time() - settings.worker.student_testing_time_limit)

    with run_workspace(settings.workspace, "r4", 1) as live:
        _age(live)  # however old, a run holds it
        report = sweep(settings, cache)
        assert live.is_dir()
    assert not live.exists()  # the run removes its own at the end

    assert report.workspaces_removed == 2
    assert not killed.exists() and not unmarked_old.exists()
    assert unmarked_young.exists() and other.exists()


def test_the_scratch_of_a_sandbox_whose_process_was_killed_is_removed(
        settings, cache, tmp_path, temporary_folder):
    """A worker's process killed while its sandbox ran (SIGKILL, the OOM killer) cannot remove
    the copies of the run's mounts (test files among them) and the result channel it made in
    the temporary folder; they stayed there for ever."""
    with _sandbox_process(tmp_path, "killed") as (process, _):
        process.kill()
        process.wait()
    assert _kinds(temporary_folder) == SCRATCH_KINDS

    report = sweep(settings, cache)

    assert os.listdir(temporary_folder) == []
    assert report.scratch_folders_removed == len(SCRATCH_KINDS)


def test_a_sweep_beside_a_live_sandbox_removes_only_a_killed_ones_scratch(
        settings, cache, tmp_path, temporary_folder):
    """Another worker on the host, or another pool process of the same worker, may be running
    a sandbox while the sweep runs: its scratch stays, however old, and the run ends as usual."""
    with _sandbox_process(tmp_path, "killed") as (process, _):
        process.kill()
        process.wait()
    left = set(os.listdir(temporary_folder))
    with _sandbox_process(tmp_path, "live") as (process, marker):
        live = set(os.listdir(temporary_folder)) - left
        assert len(live) == len(SCRATCH_KINDS)
        for name in live:
            _age(temporary_folder / name)  # however old, a live process holds it

        report = sweep(settings, cache)

        assert set(os.listdir(temporary_folder)) == live
        assert report.scratch_folders_removed == len(SCRATCH_KINDS)
        for pid in programs_with(marker):
            os.kill(pid, signal.SIGKILL)
        assert process.stdout.readline() == f"{signal.SIGKILL.value}\n".encode()
        assert process.wait() == 0
    assert os.listdir(temporary_folder) == []  # the live run removed its own at its end


def test_the_scratch_of_a_gradehook_grade_that_was_killed_is_removed(
        config, settings, cache, tmp_path, temporary_folder):
    """Staff's `gradehook grade` grades in the temporary folder: killed while a sandbox ran,
    it leaves its work folder (reference solution and test files) and the sandbox's scratch."""
    marker = f"student-{os.getpid()}-{tmp_path.name}"
    student, reference = make_assignment(
        tmp_path, "properties:\n  tests:\n    - name: values\n      entryPoint: ex.py\n"
                  "      tests:\n        - name: x\n",
        {"ex.py": "x = 1\n"}, {"ex.py": f"import os\nos.system('sleep 600 # {marker}')\n"})
    grading = subprocess.Popen(gradehook_argv(config, "grade", "--student", str(student),
                                              "--reference", str(reference)),
                               stdout=subprocess.DEVNULL)
    _kill_once_running(grading, marker, what="the student's program to run",
                       ended="the grading ended before the student's program ran")
    left = os.listdir(temporary_folder)  # a sandbox's scratch for each run in progress
    assert _kinds(temporary_folder) == {"gradehook-grade", *SCRATCH_KINDS}

    report = sweep(settings, cache)

    assert os.listdir(temporary_folder) == []
    assert report.scratch_folders_removed == len(left)


def _kill_once_running(process: subprocess.Popen, marker: str, *, what: str,
                       ended: str) -> None:
    """Wait until a host process whose command line holds marker runs (started by process),
    then kill process and every such process, as the OOM killer would."""
    try:
        wait_for(lambda: host_processes_with(marker) or process.poll() is not None, timeout=60,
                 what=what)
        assert process.poll() is None, ended
    finally:
        process.kill()
        process.wait()
        for pid in host_processes_with(marker):
            os.kill(pid, signal.SIGKILL)


def test_the_scratch_of_a_process_killed_while_it_built_the_font_cache_is_removed(
        settings, cache, tmp_path, temporary_folder):
    """A worker's process builds matplotlib's font cache for the sandbox's interpreter in the
    temporary folder before a run that plots: killed meanwhile, it left that folder for ever."""
    marker = f"fonts-{os.getpid()}-{tmp_path.name}"
    interpreter = tmp_path / f"python-{marker}"  # builds for as long as it is let
    interpreter.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(600)\n")
    interpreter.chmod(0o755)
    script = tmp_path / "font_cache_process.py"  # not on the command line: the marker is
    script.write_text(FONT_CACHE_PROCESS.format(root=str(Path(__file__).resolve().parents[2]),
                                                python=str(interpreter)))
    process = subprocess.Popen([sys.executable, str(script)])
    _kill_once_running(process, marker, what="the font cache's build to start",
                       ended="the process ended before it built the font cache")
    assert _kinds(temporary_folder) == {"gradehook-mpl-build"}

    report = sweep(settings, cache)

    assert os.listdir(temporary_folder) == []
    assert report.scratch_folders_removed == 1


def test_a_tree_a_run_touched_while_it_was_being_removed_is_put_back(settings, cache,
                                                                     git_server):
    sha = git_server.commit("staff/reference", {"week1/a/test.yaml": "1\n"})
    cache.ensure_commit("staff/reference", sha)
    tree = _tree_folder(cache, sha)  # touched now, as a run would

    assert cache._remove_tree(tree) == 0
    assert (tree / "files" / "week1" / "a" / "test.yaml").read_text() == "1\n"
    assert [p.name for p in tree.parent.iterdir()] == [tree.name]


def test_a_tree_removed_under_a_run_is_extracted_again(settings, cache, git_server):
    sha = git_server.commit("staff/reference", {"week1/a/test.yaml": "1\n"})
    cache.ensure_commit("staff/reference", sha)
    tree = _tree_folder(cache, sha)
    _age(tree)
    sweep(settings, cache)
    assert not tree.exists()

    assert (cache.tree("staff/reference", sha) / "week1" / "a" / "test.yaml").read_text() == "1\n"


def test_stale_staging_folders_go_and_project_folders_stay(settings, cache, git_server):
    sha = git_server.commit("staff/reference", {"week1/a/test.yaml": "1\n"})
    cache.ensure_commit("staff/reference", sha)
    tree = _tree_folder(cache, sha)
    stale = tree.parent / ".extract-died"
    (stale / "week1").mkdir(parents=True)
    for folder in (stale, tree.parent, tree.parent.parent):
        _age(folder)

    report = sweep(settings, cache)

    assert report.trees_removed == 1 and not stale.exists() and tree.is_dir()


def test_packing_keeps_commits_no_branch_reaches_any_more(settings, cache, git_server,
                                                          monkeypatch):
    monkeypatch.setattr(repos, "GC_AUTO_PACK_LIMIT", 1)
    git_server.commit("students/alice", {"a.txt": "first\n"})
    kept = git_server.commit("students/alice", {"a.txt": "side\n"}, branch="side")
    mirror = cache.ensure_commit("students/alice", kept)
    git("repack", "-q", cwd=mirror)
    git_server.commit("students/alice", {"a.txt": "main\n"})
    git("push", "-q", "origin", "--delete", "side",
        cwd=git_server.root / ".work" / "students/alice")
    head = git_server.commit("students/alice", {"a.txt": "main 2\n"})
    cache.ensure_commit("students/alice", head)  # the fetch prunes the deleted branch
    git("repack", "-q", cwd=mirror)
    assert _packs(mirror) == 2 and "side" not in git("branch", cwd=mirror)
    for path in (mirror / "objects").rglob("*"):
        _age(path)  # past git's default two weeks for pruning unreachable objects

    sweep(settings, cache)

    assert git("cat-file", "-t", kept, cwd=mirror) == "commit"
    assert git("count-objects", "-v", cwd=mirror).splitlines()[0] == "count: 0"


def test_a_mirror_with_too_many_packs_is_repacked(settings, cache, git_server, monkeypatch):
    monkeypatch.setattr(repos, "GC_AUTO_PACK_LIMIT", 1)
    for count in range(2):
        sha = git_server.commit("students/alice", {"a.txt": f"{count}\n"})
        mirror = cache.ensure_commit("students/alice", sha)
        git("repack", "-q", cwd=mirror)  # each fetch's objects into a pack of their own
    assert _packs(mirror) == 2

    report = sweep(settings, cache)

    assert report.mirrors_checked == 1 and _packs(mirror) == 1
    assert git("cat-file", "-t", sha, cwd=mirror) == "commit"


def test_a_sweep_gives_way_to_one_already_running_on_the_host(settings, cache):
    with _host_lock(settings.data_dir) as held:
        assert held
        assert sweep(settings, cache).skipped


def test_the_timer_sweeps_at_once_in_a_process_of_its_own(settings):
    settings.workspace.mkdir(parents=True)
    abandoned = settings.workspace / "run-r1-abc"
    abandoned.mkdir()
    _age(abandoned)
    timer = HousekeepingTimer(settings)
    timer.start()
    try:
        wait_for(lambda: not abandoned.exists(), timeout=30, what="the first sweep")
    finally:
        timer.stop()


@pytest.mark.slow
def test_a_worker_cleans_its_host_when_it_starts(tmp_path, service_settings):
    config, settings = service_settings()
    migrated_resources(settings)
    settings.workspace.mkdir(parents=True)
    abandoned = settings.workspace / "run-left-by-a-killed-worker"
    (abandoned / "student").mkdir(parents=True)
    _age(abandoned)
    with worker_process(config, log_path=tmp_path / "worker.log"):
        wait_for(lambda: not abandoned.exists(), timeout=60,
                 what="the worker to remove the abandoned workspace")


def test_empty_sandbox_cgroups_of_processes_gone_are_removed(settings, cache):
    """A worker process killed while its sandbox ran leaves the run's cgroups behind; the groups
    of a live process (it holds them locked), or that hold a process, stay."""
    parents = cgroup.controller_dirs()
    if parents is None:
        pytest.skip("no writable cgroup v1 memory and pids controllers: no cgroups are made")
    ended = subprocess.Popen(["true"])
    ended.wait()
    # An earlier release named a run's groups by its process's pid.
    earlier = [parent / f"{cgroup.GROUP_PREFIX}{ended.pid}-0" for parent in parents.values()]
    others = [parent / "another-group" for parent in parents.values()]
    gone, held = _groups_of_a_killed_process(), _groups_of_a_killed_process()
    live = cgroup.RunCgroup.create(64 * 1024 * 1024, 8)
    holder = subprocess.Popen(["sleep", "60"])
    try:
        for folder in earlier + others:
            folder.mkdir()
        for folder in held:
            (folder / "cgroup.procs").write_text(str(holder.pid))

        report = sweep(settings, cache, now=time.time() + visibility_timeout_seconds(
            settings.worker) + 1)

        assert report.sandbox_cgroups_removed >= 2  # and any other killed process's on the host
        assert not any(folder.exists() for folder in gone + earlier)
        assert all(folder.is_dir() for folder in [*held, *live.dirs.values(), *others])
        assert holder.poll() is None  # left alone: its group holds it
    finally:
        holder.kill()
        holder.wait()
        live.remove()
        for folder in gone + held + earlier + others:
            if folder.exists():
                folder.rmdir()


def test_sandbox_cgroups_younger_than_a_run_are_left(settings, cache):
    """A run's groups are free in the moment between their making and their locking: groups
    younger than any run stay, however free."""
    if cgroup.controller_dirs() is None:
        pytest.skip("no writable cgroup v1 memory and pids controllers: no cgroups are made")
    folders = _groups_of_a_killed_process()
    try:
        sweep(settings, cache)

        assert all(folder.is_dir() for folder in folders)
    finally:
        for folder in folders:
            if folder.exists():
                folder.rmdir()


def _groups_of_a_killed_process() -> list[Path]:
    """Return the folders of a run's cgroups whose process was killed as its sandbox ran."""
    program = MAKE_GROUPS_AND_DIE.format(root=str(Path(__file__).resolve().parents[2]))
    made = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=60)
    assert made.returncode == -signal.SIGKILL, made.stderr
    return [Path(folder) for folder in made.stdout.split()]
