"""Repository cache: one bare mirror per project, fetched incrementally, directories extracted."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator, NamedTuple

import git

from pipeline.branch_names import branch_name_problem
from pipeline.directory_names import is_directory_name
from pipeline.host_places import SHOWN_REPOSITORY_CACHE, hide_places
from pipeline.project_paths import is_project_path
from pipeline.tree_paths import UNGRADABLE_PATH, path_problem, shown_path

log = logging.getLogger(__name__)

# Full refs GitLab refuses as a branch's name: a branch so named could never be pushed there.
GITLAB_REFUSED_PREFIXES = ("refs/heads/", "refs/remotes/")
FULL_REF = "name the branch without {prefix} ({short!r}), as GitLab does"
HEAD_REF = "GitLab has no branch named HEAD: name the branch itself"
SHA_PATTERN = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
# The rules trees are extracted by (which attributes are off, which paths refused): part of a
# reference tree's name and, through it, of every cached reference result, so that a tree or
# result kept on disk by a gradehook extracting otherwise is never reused, but made anew.
EXTRACTION_RULES = "3"
# A tree's folder: its commit, then the extraction rules (none in the name of an older tree).
# It holds the commit's files, and the paths left out of them with why (a JSON object).
TREE_NAME = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?(@[0-9]+)?$")
TREE_FILES, TREE_LEFT_OUT = "files", "left-out.json"
MIRRORS = "mirrors"
TREES = "trees"
LOCK_SUFFIX = ".lock"
# git's own default thresholds for `gc --auto`, which the mirrors' config turns off.
GC_AUTO_LOOSE_OBJECTS = 6700
GC_AUTO_PACK_LIMIT = 50
GC_TIMEOUT_FACTOR = 10  # times the fetch timeout: packing a big mirror takes a while
MIB = 1024 * 1024
TREE_TOO_LARGE = "the files of {what} add up to more than {size_mb} MB, the most a run can grade"
TOO_MANY_FILES = "{what} holds more than {limit} files and folders, the most a run can grade"
UNSAFE_TREE = "{what} cannot be graded safely: {detail}"
NOT_A_FOLDER = "{what} is a {kind} in this commit, not a folder"
SUBMODULE_MODE = "160000"
GIT_REFUSED_PATH = "{path} is a path git does not allow"
LINK_LEAVES = "{path} is a link to {target}, outside {region}: commit the file itself instead"
WHOLE_REPOSITORY = "the repository"
NEITHER_KIND = "{path} is neither a file, a folder nor a link"
# How git archive names a tree entry it will not write ("." or "..", which git fsck refuses).
# A path may hold a line break, which git writes as it is.
INVALID_PATH = re.compile(r"^error: invalid path '(.*?)'$", re.MULTILINE | re.DOTALL)
SUBMODULE_FOLDER = ("{what} is a submodule in this commit, not a folder: its files are in "
                    "another git repository (a `git init` inside the folder makes one)")
DIR_MODE, FILE_MODE, EXECUTABLE_MODE = 0o755, 0o644, 0o755
# Attributes that override a commit's own .gitattributes when it is archived: export-subst
# could make git build huge files in memory from a small commit, export-ignore hide files, and
# filter run on its files a program that the worker's git knows (git-lfs, which then fails the
# archive: it cannot fetch the objects). The conversions (end of line, $Id$, encoding) git skips
# for a file it streams (over core.bigFileThreshold) are off for all: files are as committed.
NEUTRAL_ATTRIBUTES = "* -export-subst -export-ignore -filter -text -ident -working-tree-encoding\n"
# A tree touched this recently when housekeeping had just renamed it away is put back.
TREE_TOUCH_SLACK_SECONDS = 60.0
# git holds each blob smaller than core.bigFileThreshold (512 MiB unless set) in memory whole to
# fetch, archive or pack it: a push of some KB (a file of zeros) would cost a worker that much.
# Above this threshold git streams a blob instead.
STREAMING_GIT = ("git", "-c", "core.bigFileThreshold=1m")
EXTRACTING, REMOVING = ".extract-", ".remove-"
STAGING_PREFIXES = (EXTRACTING, REMOVING)
GIT_ERROR_CHARACTERS = 400


class _LinkRegion(NamedTuple):
    """Where a link must lead: a folder on this host, and that folder as messages name it."""

    place: str
    shown: str


class RepositoryError(Exception):
    """Git could not do its part; a failure of ours, worth a retry."""


class InvalidInputError(RepositoryError):
    """A project path, ref, SHA or directory was refused before it reached git."""


class PathMissingError(RepositoryError):
    """The requested path does not exist at that commit."""


class MissingCommitError(RepositoryError):
    """The commit or ref does not exist in the project, even after a fetch."""


class UngradableTreeError(RepositoryError):
    """The commit's files cannot be laid out for grading: too large, or unsafe links."""


class RefusedPathError(UngradableTreeError):
    """git refuses to write one of the commit's paths (`..`, `.git`): it archives none."""

    def __init__(self, message: str, path: str, detail: str) -> None:
        super().__init__(message)
        self.path = path
        self.detail = detail


def check_sha(sha: str) -> str:
    """Return a full hexadecimal commit SHA unchanged, or raise InvalidInputError."""
    if not isinstance(sha, str) or not SHA_PATTERN.fullmatch(sha):
        raise InvalidInputError(f"not a full commit SHA: {sha!r:.80}")
    return sha


def tree_name(sha: str) -> str:
    """Return what names a commit's tree as extracted: the commit and the extraction rules."""
    return f"{check_sha(sha)}@{EXTRACTION_RULES}"


def check_project_path(path: str) -> str:
    """Return a GitLab project path unchanged, or raise InvalidInputError."""
    if not is_project_path(path):
        raise InvalidInputError(f"not a GitLab project path: {path!r:.80}")
    return path


def check_ref(ref: str) -> str:
    """Return a branch name unchanged if git would accept it, it cannot pass as an option and
    GitLab could have such a branch (Gitlab::GitRefValidator refuses `HEAD` and full refs)."""
    problem = branch_name_problem(ref) or _gitlab_ref_problem(ref)
    if problem:
        raise InvalidInputError(f"not a valid branch name: {ref!r:.80}: {problem}")
    return ref


def _gitlab_ref_problem(ref: str) -> str | None:
    """Say why GitLab could have no branch of a name git accepts; None when it could."""
    if ref == "HEAD":
        return HEAD_REF
    for prefix in GITLAB_REFUSED_PREFIXES:
        if ref.startswith(prefix):
            return FULL_REF.format(prefix=prefix, short=ref.removeprefix(prefix))
    return None


def check_directory(directory: str) -> str:
    """Return an assignment directory (relative, no '..') unchanged, or raise InvalidInputError."""
    if not is_directory_name(directory):
        raise InvalidInputError(f"not an assignment directory: {directory!r:.80}")
    return directory


class RepositoryCache:
    """Bare mirrors of GitLab projects under one folder, safe for several workers at once."""

    def __init__(self, root: Path, base_url: str, token: str = "", timeout: float = 60.0):
        self.root = Path(root)
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout = timeout
        # (project, branch) -> (the mirror's fetch stamp, the SHA the branch pointed at then).
        self._resolved: dict[tuple[str, str], tuple[tuple[int, int], str]] = {}

    def url_for(self, project_path: str) -> str:
        """Return the token-free fetch URL of a project."""
        return f"{self.base_url}/{check_project_path(project_path)}.git"

    def mirror_path(self, project_path: str) -> Path:
        """Return where the bare mirror of a project lives."""
        return self.root / MIRRORS / (check_project_path(project_path) + ".git")

    def ensure_commit(self, project_path: str, sha: str) -> Path:
        """Make sure the mirror holds a commit, fetching if needed; return the mirror path."""
        check_sha(sha)
        with self._locked_mirror(project_path) as mirror:
            # A mirror never fetched holds nothing: fetch without asking git first.
            if self._fetch_stamp(mirror) is None or not self._has_object(mirror,
                                                                         f"{sha}^{{commit}}"):
                self._fetch(mirror, project_path)
            if not self._has_object(mirror, f"{sha}^{{commit}}"):
                raise MissingCommitError(f"commit {sha} is not in project {project_path}")
        return mirror

    def resolve_branch(self, project_path: str, branch: str, *, fetch: bool = True,
                       max_age: float = 0.0) -> str:
        """Return the SHA a branch points at, fetching the project first unless told not to.

        With `max_age`, a mirror fetched less than that many seconds ago (by any process) is
        not fetched again: a deadline rush then fetches the reference once, not once per run.
        """
        check_ref(branch)
        with self._locked_mirror(project_path) as mirror:
            if fetch and not self._fetched_within(mirror, max_age):
                self._fetch(mirror, project_path)
            # Branches move only when a fetch runs, and every fetch rewrites FETCH_HEAD: an
            # answer given since the last fetch still holds, with no git process.
            key, stamp = (project_path, branch), self._fetch_stamp(mirror)
            known = self._resolved.get(key)
            if stamp is not None and known is not None and known[0] == stamp:
                return known[1]
            try:
                sha = _git(mirror, "rev-parse", "--verify", "--end-of-options",
                           f"refs/heads/{branch}^{{commit}}").decode().strip()
            except _GitFailed:
                raise MissingCommitError(
                    f"branch {branch} does not exist in project {project_path}") from None
            self._resolved[key] = (stamp, sha)
            return sha

    def has_path(self, project_path: str, sha: str, path: str) -> bool:
        """Tell whether a file or directory exists at a commit of a mirrored project."""
        check_sha(sha)
        check_directory(path)
        return self._has_object(self.mirror_path(project_path), f"{sha}:{path}")

    def has_commit(self, project_path: str, sha: str) -> bool:
        """Tell whether a mirrored project holds a commit (no fetch)."""
        mirror = self.mirror_path(project_path)
        return mirror.exists() and self._has_object(mirror, f"{check_sha(sha)}^{{commit}}")

    def tree(self, project_path: str, sha: str) -> Path:
        """Return the folder of a whole commit's files, extracted once under the cache and
        shared by later runs.

        Treat the folder as read-only: every run of the same commit gets the same one. A path
        that cannot be laid out (tree_paths) is left out, and refused by `check_tree_paths` only
        to a run that uses it: one in another assignment's folder stops no run.
        """
        target = self.root / TREES / check_project_path(project_path) / tree_name(sha)
        with contextlib.suppress(FileNotFoundError):  # gone: housekeeping took it, extract again
            os.utime(target)  # its last use, which housekeeping goes by
            return target / TREE_FILES
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=EXTRACTING, dir=target.parent))
        try:
            left_out = self._untar_all(self.mirror_path(project_path), sha,
                                       staging / TREE_FILES)
            (staging / TREE_LEFT_OUT).write_text(json.dumps(left_out))
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target / TREE_FILES

    def remove_unused_trees(self, unused_since: float) -> int:
        """Remove extracted trees not used since a moment (seconds since the epoch); count them.

        A tree's modification time is its last use: `tree` touches it before handing it out.
        A tree is renamed away first and its time read again: a run that touched it meanwhile
        gets it back at once, and a run that comes after the rename extracts it anew. Staging
        folders of extractions that died are removed too.
        """
        removed = 0
        for parent, folders, _ in os.walk(self.root / TREES):
            candidates = [name for name in folders
                          if TREE_NAME.fullmatch(name) or name.startswith(STAGING_PREFIXES)]
            # Walk down the project paths only: never into a tree or a staging folder.
            folders[:] = [name for name in folders
                          if name not in candidates and not name.startswith(".")]
            for name in candidates:
                path = Path(parent) / name
                with contextlib.suppress(FileNotFoundError):
                    if os.stat(path).st_mtime < unused_since:
                        removed += self._remove_tree(path)
        return removed

    @staticmethod
    def _remove_tree(tree: Path) -> int:
        """Remove an unused tree or stale staging folder; return 1 if it went, else 0."""
        doomed = Path(tempfile.mkdtemp(prefix=REMOVING, dir=tree.parent))
        try:
            os.rename(tree, doomed / tree.name)
            touched = os.stat(doomed / tree.name).st_mtime
            if touched > time.time() - TREE_TOUCH_SLACK_SECONDS:
                os.rename(doomed / tree.name, tree)  # touched just now: a run has it
                return 0
        except OSError as exc:
            log.warning("could not remove the unused tree %s: %s", tree, exc)
            return 0
        finally:
            shutil.rmtree(doomed, ignore_errors=True)
        return 1

    def pack_mirrors(self) -> int:
        """Let git pack each mirror that gathered enough loose objects or packs; count them.

        Fetches run with automatic maintenance off (it would cost each run a process), so it
        is done here, under each mirror's lock, with git's usual thresholds. Nothing is ever
        pruned: objects no branch reaches any more (a deleted or rewritten branch) go into a
        cruft pack, so an old run's commit can still be graded again.
        """
        checked = 0
        for lock_path in sorted((self.root / MIRRORS).rglob(f"*.git{LOCK_SUFFIX}")):
            mirror = lock_path.with_suffix("")
            with _mirror_lock(mirror):
                if not (mirror / "HEAD").exists():
                    continue
                try:
                    # In the foreground: the lock must cover the whole of it.
                    _git(mirror, "-c", f"gc.auto={GC_AUTO_LOOSE_OBJECTS}",
                         "-c", f"gc.autoPackLimit={GC_AUTO_PACK_LIMIT}",
                         "-c", "gc.autoDetach=false", "-c", "gc.pruneExpire=never",
                         "-c", "gc.cruftPacks=true", "gc", "--auto", "--quiet",
                         timeout=self.timeout * GC_TIMEOUT_FACTOR)
                except _GitFailed as exc:
                    log.warning("git gc of %s failed: %s", mirror, exc.reason)
                    continue
                except subprocess.TimeoutExpired as exc:
                    log.warning("git gc of %s stopped after %g s", mirror, exc.timeout)
                    continue
            checked += 1
        return checked

    def extract(self, project_path: str, sha: str, directory: str, dest: Path, *,
                missing_ok: bool = True, max_bytes: int | None = None,
                max_files: int | None = None) -> Path:
        """Write one directory of a commit into dest/directory and return that path.

        A directory the commit lacks is made empty, or raises PathMissingError when not
        `missing_ok`: one git process answers both whether it exists and what it holds.
        Files adding up to more than `max_bytes`, more than `max_files` files and folders, a path
        leading out of the files extracted, a link leading out of the directory, a path or link
        beyond what a file system holds (tree_paths), anything but files, folders and links, a
        directory that is itself a file or a link, or a submodule there or in it raise
        UngradableTreeError.
        """
        check_sha(sha)
        check_directory(directory)
        target = Path(dest) / directory
        hollow = False
        try:
            hollow = self._untar(self.mirror_path(project_path), sha, [directory], Path(dest),
                                 max_bytes=max_bytes, max_files=max_files)
        except PathMissingError:
            if not missing_ok:
                raise
        with contextlib.suppress(FileNotFoundError):
            mode = os.lstat(target).st_mode
            if not stat.S_ISDIR(mode):  # the commit holds a file or a link by that name
                raise UngradableTreeError(NOT_A_FOLDER.format(
                    what=directory, kind="link" if stat.S_ISLNK(mode) else "file"))
        # git archives a submodule as an empty folder, and git keeps no other empty folder.
        submodules = self._submodules(project_path, sha, directory) if hollow else []
        if submodules:
            raise UngradableTreeError(SUBMODULE_FOLDER.format(what=shown_path(submodules[0])))
        target.mkdir(parents=True, exist_ok=True)
        return target

    def _untar_all(self, mirror: Path, sha: str, dest: Path) -> dict[str, str]:
        """Extract a whole commit into dest, leaving out each path that cannot be laid out or
        that git refuses to write; return those paths with why (path -> why).

        git archives nothing of a tree holding a path it refuses, so such a path is taken out
        of a copy of the tree (written to the mirror, as a tree object no ref keeps), and the
        copy is archived instead.
        """
        left_out: dict[str, str] = {}
        tree = sha
        while True:
            dest.mkdir()
            try:
                self._untar(mirror, tree, [], dest, left_out=left_out)
                return left_out
            except RefusedPathError as exc:
                smaller = _tree_without(mirror, tree, exc.path.split("/"))
                if smaller is None:
                    raise
                left_out[exc.path] = exc.detail
                tree = smaller
                shutil.rmtree(dest)

    def _submodules(self, project_path: str, sha: str, directory: str) -> list[str]:
        """Return the paths of the submodules (gitlinks) of a directory at a commit, itself too."""
        try:
            out = _git(self.mirror_path(project_path), "ls-tree", "-r", "-z", sha, "--",
                       directory)
        except _GitFailed as exc:
            raise self._git_error(f"git ls-tree of {directory} at {sha} failed: {exc.reason}") \
                from None
        return [entry.split("\t", 1)[1] for entry in _paths(out)
                if entry.startswith(SUBMODULE_MODE + " ")]

    def _untar(self, mirror: Path, sha: str, paths: list[str], dest: Path, *,
               max_bytes: int | None = None, max_files: int | None = None,
               left_out: dict[str, str] | None = None) -> bool:
        """Stream `git archive` of paths at a commit into dest, member by member; return
        whether a folder came out empty. With `left_out`, a path that cannot be laid out is
        recorded there (path -> why) and skipped, not refused.

        Nothing is held in memory whole, by git or here: a small commit of a huge file of zeros
        costs disk up to `max_bytes` at the most, never the worker's memory.
        """
        what = " ".join(paths) or "the tree"
        _neutralise_attributes(mirror)
        with tempfile.TemporaryFile() as errors:
            archive = subprocess.Popen([*STREAMING_GIT, "archive", "--format=tar", sha, "--",
                                        *paths],
                                       cwd=mirror, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=errors, env=_english_env())
            unreadable, hollow = None, False
            try:
                hollow = _extract_stream(archive.stdout, dest, max_bytes, what, max_files,
                                         folder=paths[0] if paths else "", left_out=left_out)
                archive.stdout.read()  # the archive's closing padding: let git finish writing
            except tarfile.ReadError as exc:  # no archive at all: git's failure tells why
                unreadable = exc
            except BaseException:
                archive.kill()
                raise
            finally:
                archive.stdout.close()
                archive.wait(timeout=self.timeout)
            errors.seek(0)
            failed = _GitFailed(archive.returncode, errors.read().decode(errors="replace")) \
                if archive.returncode else None
        if failed is not None:
            if "did not match any files" in failed.stderr:
                raise PathMissingError(f"{what} is not in {sha}") from None
            invalid = INVALID_PATH.search(failed.stderr)
            if invalid is not None:  # the commit's, for good: no retry would change it
                detail = GIT_REFUSED_PATH.format(path=shown_path(invalid.group(1)))
                raise RefusedPathError(UNSAFE_TREE.format(what=what, detail=detail),
                                       invalid.group(1), detail)
            raise self._git_error(f"git archive of {what} at {sha} failed: {failed.reason}")
        if unreadable is not None:
            raise RepositoryError(f"git archive of {what} at {sha} was unreadable: {unreadable}")
        return hollow

    def list_files(self, project_path: str, sha: str) -> list[str]:
        """Return every file path of a commit of a mirrored project."""
        check_sha(sha)
        try:
            out = _git(self.mirror_path(project_path), "ls-tree", "-r", "-z", "--name-only",
                       "--full-tree", sha)
        except _GitFailed as exc:
            raise self._git_error(f"git ls-tree of {sha} failed: {exc.reason}") from None
        return _paths(out)

    def changed_paths(self, project_path: str, base: str, head: str) -> list[str]:
        """Return the paths that differ between two commits of a mirrored project."""
        check_sha(base)
        check_sha(head)
        try:
            out = _git(self.mirror_path(project_path), "diff", "--name-only", "--no-renames",
                       "-z", base, head, "--")
        except _GitFailed as exc:
            raise self._git_error(f"git diff failed: {exc.reason}") from None
        return _paths(out)

    def merge_base(self, project_path: str, a: str, b: str) -> str | None:
        """Return the best common ancestor of two commits, or None if they share no history."""
        check_sha(a)
        check_sha(b)
        try:
            return _git(self.mirror_path(project_path), "merge-base", a, b).decode().strip()
        except _GitFailed:
            return None

    @contextlib.contextmanager
    def _locked_mirror(self, project_path: str) -> Iterator[Path]:
        path = self.mirror_path(project_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _mirror_lock(path):
            if not (path / "HEAD").exists():
                self._create_mirror(path, project_path)
            yield path

    def _create_mirror(self, path: Path, project_path: str) -> None:
        """Make an empty bare mirror: one git process, no hook samples, configured by file."""
        shutil.rmtree(path, ignore_errors=True)
        try:
            _git(path.parent, "init", "--bare", "--quiet", "--template=", path.name)
        except _GitFailed as exc:
            raise self._git_error(f"git init of {project_path} failed: {exc.reason}") \
                from None
        config = git.GitConfigParser(str(path / "config"), read_only=False)
        with config:  # writes the file; no git process
            config.set_value('remote "origin"', "url", self.url_for(project_path))
            # Branches, and merge request heads, which GitLab keeps after a source branch goes.
            config.set_value('remote "origin"', "fetch", "+refs/heads/*:refs/heads/*")
            config.add_value('remote "origin"', "fetch",
                             "+refs/merge-requests/*/head:refs/merge-requests/*/head")
            config.set_value("gc", "auto", "0")

    @staticmethod
    def _fetch_stamp(mirror: Path) -> tuple[int, int] | None:
        """Return what identifies the mirror's last fetch (FETCH_HEAD's inode and time), if any."""
        try:
            fetched = os.stat(mirror / "FETCH_HEAD")
        except FileNotFoundError:
            return None
        return fetched.st_ino, fetched.st_mtime_ns

    @classmethod
    def _fetched_within(cls, mirror: Path, seconds: float) -> bool:
        stamp = cls._fetch_stamp(mirror)
        return stamp is not None and time.time() - stamp[1] / 1e9 < seconds

    def _fetch(self, mirror: Path, project_path: str) -> None:
        log.info("fetching %s", project_path)
        try:
            # No maintenance run after the fetch: gc.auto is off, so it would only cost a
            # process (housekeeping packs the mirrors).
            _git(mirror, "fetch", "--prune", "--no-tags", "--no-auto-maintenance", "--quiet",
                 "origin", timeout=self.timeout, env=self._git_env())
        except subprocess.TimeoutExpired:
            raise RepositoryError(f"fetching {project_path} took over {self.timeout:g} s") \
                from None
        except _GitFailed as exc:
            raise self._git_error(f"fetching {project_path} failed: {exc.reason}") from None

    def _git_error(self, message: str) -> RepositoryError:
        """Return our error for a failure of git, naming the cache without its place on this
        host (as given or resolved), cut short: a run's reason reaches students."""
        return RepositoryError(hide_places(message, {SHOWN_REPOSITORY_CACHE: self.root})
                               [:GIT_ERROR_CHARACTERS])

    @staticmethod
    def _has_object(mirror: Path, name: str) -> bool:
        """Tell whether a commit (`sha^{commit}`) or a path (`sha:path`) exists in a mirror."""
        try:
            _git(mirror, "cat-file", "-e", name)
            return True
        except _GitFailed:
            return False

    def _git_env(self) -> dict[str, str]:
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
        if self._token:
            # The token travels in a header set through the environment, never in the URL or argv.
            credentials = base64.b64encode(f"oauth2:{self._token}".encode()).decode()
            env.update({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {credentials}"})
        return env


@contextlib.contextmanager
def _mirror_lock(mirror: Path) -> Iterator[None]:
    """Hold a mirror's lock (shared by every process of the host) while the block runs."""
    with open(str(mirror) + LOCK_SUFFIX, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


class _GitFailed(Exception):
    """A git command exited with an error."""

    def __init__(self, returncode: int, stderr: str):
        super().__init__(stderr)
        self.stderr = stderr
        text = stderr.strip().replace("stderr: ", "", 1).strip("'\" \n")
        lines = text.splitlines()
        # git's own reason is its first "fatal:" line, else its first "error:" line; advice
        # lines follow them.
        reason = next((line for prefix in ("fatal:", "error:") for line in lines
                       if line.startswith(prefix)), lines[-1] if lines else "")
        self.reason = reason or f"exit code {returncode}"


def _paths(out: bytes) -> list[str]:
    """Return the paths of git's NUL-separated output.

    git keeps a path's bytes as committed: a name that is not UTF-8 (an old tool's Latin-1)
    gets U+FFFD for its odd bytes, which no assignment directory holds.
    """
    return [path for path in out.decode(errors="replace").split("\0") if path]


def _extract_stream(stream, dest: Path, max_bytes: int | None, what: str,
                    max_files: int | None = None, folder: str = "",
                    left_out: dict[str, str] | None = None) -> bool:
    """Write a tar stream's files, folders and links into dest, up to max_bytes of files and
    max_files files, folders and links in dest/folder; return whether a folder written holds
    nothing.

    Members are checked here, not by tarfile's extraction filters (which not every Python 3.11
    has): a path must stay inside dest and pass through no link, a link must point inside
    dest, and inside dest/folder when it lies there (the files graded are that folder's alone),
    and nothing but files, folders and links is written. Files get mode 0644 (0755 when
    executable) and this process as their owner. Each path is checked before anything is
    written for it: the tree written never holds a path the copies for the sandbox would fail on
    (one is refused, or with `left_out` recorded there, path -> why, and skipped).
    """
    root = os.path.realpath(dest)
    within = os.path.join(root, folder) if folder else root
    total = entries = 0
    links: list[tuple[_LinkRegion, str, tarfile.TarInfo]] = []
    folders: set[str] = set()
    filled: set[str] = set()
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            total += member.size
            if max_bytes is not None and total > max_bytes:
                raise UngradableTreeError(TREE_TOO_LARGE.format(what=what,
                                                                size_mb=max_bytes // MIB))
            problem = path_problem(member.name, member.linkname if member.issym() else None)
            if problem is not None and left_out is not None:
                left_out[member.name] = problem
                continue
            if problem is not None:
                raise UngradableTreeError(UNGRADABLE_PATH.format(what=what, detail=problem))
            path = _member_path(root, member.name, what)
            in_folder = path.startswith(within + os.sep)  # not the folder, nor those above it
            entries += in_folder
            if max_files is not None and entries > max_files:
                raise UngradableTreeError(TOO_MANY_FILES.format(what=what, limit=max_files))
            filled.add(os.path.dirname(path))
            if member.isdir():
                folders.add(path)
                os.makedirs(path, mode=DIR_MODE, exist_ok=True)
            elif member.isfile():
                _write_member(tar, member, path, what)
            elif member.issym():
                region = _LinkRegion(within, shown_path(folder)) if in_folder and folder \
                    else _LinkRegion(root, WHOLE_REPOSITORY)
                points_to = os.path.normpath(os.path.join(os.path.dirname(path),
                                                          member.linkname))
                if os.path.isabs(member.linkname) or not _inside(points_to, region.place):
                    _refuse_unsafe(member, _link_leaves(region, member), what, left_out)
                    continue
                os.symlink(member.linkname, path)
                links.append((region, path, member))
            else:
                _refuse_unsafe(member, NEITHER_KIND.format(path=shown_path(member.name)), what,
                               left_out)
    _check_links_resolve_inside(links, what, left_out)
    return not folders <= filled


def _refuse_unsafe(member: tarfile.TarInfo, detail: str, what: str,
                   left_out: dict[str, str] | None) -> None:
    """Refuse a member that cannot be written safely, or with `left_out` record it there."""
    if left_out is None:
        raise UngradableTreeError(UNSAFE_TREE.format(what=what, detail=detail))
    left_out[member.name] = detail


def _tree_without(mirror: Path, tree: str, parts: list[str]) -> str | None:
    """Write a copy of a tree without the entry that parts lead to; return its id, or None
    where parts lead to no entry."""
    listing = [entry for entry in _git(mirror, "ls-tree", "-z", tree).split(b"\0") if entry]
    name, kept, found = os.fsencode(parts[0]), [], False
    for entry in listing:
        info, entry_name = entry.split(b"\t", 1)
        if entry_name == name and len(parts) == 1:
            found = True
            continue
        if entry_name == name and info.split(b" ")[1] == b"tree":
            inner = _tree_without(mirror, info.split(b" ")[2].decode(), parts[1:])
            if inner is not None:
                found = True
                entry = b" ".join(info.split(b" ")[:2] + [inner.encode()]) + b"\t" + entry_name
        kept.append(entry)
    if not found:
        return None
    return _git(mirror, "mktree", "-z", input=b"".join(entry + b"\0" for entry in kept)
                ).decode().strip()


def check_tree_paths(files: Path, used: Iterable[str]) -> None:
    """Raise UngradableTreeError when a path left out of a tree's files (RepositoryCache.tree)
    lies in, or holds, a path a run uses (relative to the tree)."""
    left_out = json.loads((files.parent / TREE_LEFT_OUT).read_text())
    for path in used:
        wanted = PurePosixPath(path).parts
        for missing, problem in left_out.items():
            common = min(len(wanted), len(PurePosixPath(missing).parts))
            if PurePosixPath(missing).parts[:common] == wanted[:common]:
                raise UngradableTreeError(UNGRADABLE_PATH.format(what=path, detail=problem))


def _neutralise_attributes(mirror: Path) -> None:
    """Make the mirror's own attributes, which outrank a commit's, switch off export rules,
    filters and conversions (again where an older gradehook wrote fewer)."""
    attributes = mirror / "info" / "attributes"
    with contextlib.suppress(FileNotFoundError):
        if attributes.read_text() == NEUTRAL_ATTRIBUTES:
            return
    attributes.parent.mkdir(exist_ok=True)
    # Written aside and renamed: a git archiving meanwhile reads the old file or the new.
    fd, written = tempfile.mkstemp(dir=attributes.parent, prefix=".attributes-")
    with os.fdopen(fd, "w") as handle:
        handle.write(NEUTRAL_ATTRIBUTES)
    os.replace(written, attributes)


def _member_path(root: str, name: str, what: str) -> str:
    """Return where a member goes under root; refuse a path leaving it or passing a link."""
    path = os.path.normpath(os.path.join(root, name))
    parent = os.path.dirname(path)
    if os.path.isabs(name) or not path.startswith(root + os.sep) \
            or os.path.realpath(parent) != parent:
        raise UngradableTreeError(UNSAFE_TREE.format(
            what=what, detail=f"{shown_path(name)} would be written outside the files extracted"))
    os.makedirs(parent, mode=DIR_MODE, exist_ok=True)
    return path


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, path: str, what: str) -> None:
    mode = EXECUTABLE_MODE if member.mode & stat.S_IXUSR else FILE_MODE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     mode)
    except FileExistsError:
        raise UngradableTreeError(UNSAFE_TREE.format(
            what=what, detail=f"{shown_path(member.name)} appears twice")) from None
    with os.fdopen(fd, "wb") as target:
        shutil.copyfileobj(tar.extractfile(member), target)


def _link_leaves(region: _LinkRegion, member: tarfile.TarInfo) -> str:
    """Word why a link that leads out of its region is refused."""
    return LINK_LEAVES.format(path=shown_path(member.name), target=shown_path(member.linkname),
                              region=region.shown)


def _check_links_resolve_inside(links: list[tuple[_LinkRegion, str, tarfile.TarInfo]],
                                what: str, left_out: dict[str, str] | None) -> None:
    """Refuse a link (region, path, member) that the kernel resolves outside its region once
    every member is written, or with `left_out` record and remove it.

    Each link's target was checked as written, but `..` after another link climbs from where
    that link leads, not from where it lies: `d/p -> ../x` then `d/q -> p/../../../y` reads as
    inside and leads out. Only the finished tree tells where each link leads, and a link
    removed changes where others lead: they are read again until none leads out.
    """
    while links:
        leaving = [link for link in links if not _inside(os.path.realpath(link[1]), link[0].place)]
        for region, path, member in leaving:
            _refuse_unsafe(member, _link_leaves(region, member), what, left_out)
            os.unlink(path)
        if not leaving:
            return
        links = [link for link in links if link not in leaving]


def _inside(path: str, folder: str) -> bool:
    """Tell whether a normalised absolute path is a folder or lies in it."""
    return path == folder or path.startswith(folder + os.sep)


def _english_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment git runs in: ours plus extras, with its messages in English."""
    # git's messages in English, which the callers match on.
    return {**os.environ, **(env or {}), "LC_ALL": "C", "LANGUAGE": "C"}


def _git(cwd: Path, *args: str, timeout: float | None = None,
         env: dict[str, str] | None = None, input: bytes = b"") -> bytes:
    """Run git in a folder and return its output; raise _GitFailed when it fails.

    At the timeout, or any interruption (a task's time limit), git is killed before this
    returns: no git process outlives its caller.
    """
    result = subprocess.run([*STREAMING_GIT, *args], cwd=cwd, capture_output=True, input=input,
                            timeout=timeout, env=_english_env(env))
    if result.returncode != 0:
        raise _GitFailed(result.returncode, result.stderr.decode(errors="replace"))
    return result.stdout
