"""The repository cache against real bare repositories: mirrors, extraction, freshness, diffs."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile

import pytest

from pipeline.repos import MissingCommitError, RepositoryCache, RepositoryError, \
    UngradableTreeError, _extract_stream
from tests.infra.gitrepos import git


@pytest.fixture
def cache(tmp_path, git_server):
    return RepositoryCache(tmp_path / "cache", git_server.base_url, token="glpat-secret-token")


def test_a_commit_is_fetched_once_and_its_directory_extracted(tmp_path, cache, git_server):
    sha = git_server.commit("students/alice", {"week1/a/main.py": "x = 1\n", "other.txt": "o\n"})
    mirror = cache.ensure_commit("students/alice", sha)
    assert "glpat-secret-token" not in (mirror / "config").read_text()
    folder = cache.extract("students/alice", sha, "week1/a", tmp_path / "out")
    assert sorted(p.name for p in folder.iterdir()) == ["main.py"]
    assert not (tmp_path / "out" / "other.txt").exists()


def test_a_directory_missing_from_the_commit_is_extracted_empty(tmp_path, cache, git_server):
    sha = git_server.commit("students/alice", {"README.md": "r\n"})
    cache.ensure_commit("students/alice", sha)
    folder = cache.extract("students/alice", sha, "week1/a", tmp_path / "out")
    assert folder.is_dir() and list(folder.iterdir()) == []


def test_files_beyond_the_size_limit_are_refused_while_extracting(tmp_path, cache, git_server):
    sha = git_server.commit("students/alice", {"week1/a/small.txt": "s\n",
                                               "week1/a/zeros.txt": "0" * (3 * 1024 * 1024)})
    cache.ensure_commit("students/alice", sha)
    with pytest.raises(UngradableTreeError, match="more than 1 MB"):
        cache.extract("students/alice", sha, "week1/a", tmp_path / "out", max_bytes=1024 * 1024)
    written = sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written <= 1024 * 1024
    folder = cache.extract("students/alice", sha, "week1/a", tmp_path / "whole",
                           max_bytes=4 * 1024 * 1024)
    assert (folder / "zeros.txt").stat().st_size == 3 * 1024 * 1024


def test_a_link_out_of_the_extracted_folder_is_refused(tmp_path, cache, git_server):
    outside = tmp_path / "outside.conf"
    outside.write_text("host file\n")
    sha = git_server.commit("students/alice", {"week1/a/main.py": "x = 1\n"},
                            links={"week1/a/data.txt": str(outside)})
    cache.ensure_commit("students/alice", sha)
    with pytest.raises(UngradableTreeError, match="cannot be graded safely"):
        cache.extract("students/alice", sha, "week1/a", tmp_path / "out")
    assert outside.read_text() == "host file\n"


def test_a_link_within_the_folder_is_extracted_as_a_link(tmp_path, cache, git_server):
    sha = git_server.commit("students/alice", {"week1/a/main.py": "x = 1\n"},
                            links={"week1/a/alias.py": "main.py", "week1/a/sub/up": ".."})
    cache.ensure_commit("students/alice", sha)
    folder = cache.extract("students/alice", sha, "week1/a", tmp_path / "out")
    assert (folder / "alias.py").is_symlink() and (folder / "alias.py").read_text() == "x = 1\n"
    assert (folder / "sub" / "up" / "main.py").read_text() == "x = 1\n"


def test_a_commits_own_attributes_are_not_applied(tmp_path, cache, git_server):
    """export-subst could make git build huge files from a small commit, export-ignore hide
    files; the conversions git skips for a file over core.bigFileThreshold are skipped for all,
    so that every file comes out as committed."""
    sha = git_server.commit("students/alice", {
        ".gitattributes": "week1/a/*.txt export-subst\nweek1/a/hidden.py export-ignore\n"
                          "*.csv text eol=crlf\n*.id ident\n",
        "week1/a/format.txt": "$Format:%H%n%<(4000)%H$\n", "week1/a/hidden.py": "x = 1\n",
        "week1/a/data.csv": "a,b\n1,2\n", "week1/a/version.id": "$Id$\n"})
    cache.ensure_commit("students/alice", sha)
    folder = cache.extract("students/alice", sha, "week1/a", tmp_path / "out")
    assert (folder / "format.txt").read_text() == "$Format:%H%n%<(4000)%H$\n"
    assert (folder / "hidden.py").read_text() == "x = 1\n"
    assert (folder / "data.csv").read_bytes() == b"a,b\n1,2\n"
    assert (folder / "version.id").read_text() == "$Id$\n"


def test_a_commits_attributes_run_no_filter_the_workers_git_knows(tmp_path, cache, git_server,
                                                                  monkeypatch):
    """`git lfs install` gives a host's git a filter that a commit's attributes could name."""
    ran = tmp_path / "filter-ran"
    config = tmp_path / "gitconfig"
    config.write_text(f'[filter "lfs"]\n\tsmudge = "touch {ran}; cat"\n\trequired = true\n')
    sha = git_server.commit("students/alice", {".gitattributes": "*.py filter=lfs\n",
                                               "week1/a/main.py": "x = 1\n"})
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    mirror = cache.ensure_commit("students/alice", sha)
    # What an older gradehook wrote in its mirrors.
    (mirror / "info").mkdir(exist_ok=True)
    (mirror / "info" / "attributes").write_text("* -export-subst -export-ignore\n")
    folder = cache.extract("students/alice", sha, "week1/a", tmp_path / "out")
    assert (folder / "main.py").read_text() == "x = 1\n"
    assert not ran.exists()


def _stored(bare, data: bytes, kind: str = "blob") -> str:
    """Store an object as it is, unchecked (a tree git fsck refuses too); return its id."""
    return subprocess.run(["git", "hash-object", "-t", kind, "--literally", "-w", "--stdin"],
                          cwd=bare, input=data, capture_output=True, check=True
                          ).stdout.decode().strip()


def _tree(bare, *entries: tuple[bytes, bytes, str]) -> str:
    return _stored(bare, b"".join(mode + b" " + name + b"\0" + bytes.fromhex(sha)
                                  for mode, name, sha in entries), "tree")


@pytest.mark.parametrize("name, shown", [(b".", "week1/a/."), (b"..", "week1/a/../x.py")])
def test_a_path_git_does_not_allow_is_refused_not_failed_on(tmp_path, cache, git_server, name,
                                                            shown):
    """GitLab refuses such a tree on push; one that got there anyway is the commit's failure,
    which no retry would change."""
    bare = git_server.bare("students/alice")
    entry = (b"40000", name, _tree(bare, (b"100644", b"x.py", _stored(bare, b"x\n")))) \
        if name == b".." else (b"100644", name, _stored(bare, b"x\n"))
    root = _tree(bare, (b"40000", b"week1", _tree(bare, (b"40000", b"a", _tree(bare, entry)))))
    assert _refusal_of(cache, bare, root, tmp_path) == (
        f"week1/a cannot be graded safely: {shown} is a path git does not allow")


def test_a_path_git_does_not_allow_under_a_name_with_a_line_break_is_refused(
        tmp_path, cache, git_server):
    """git writes such a path as it is, over two lines; it is still the commit's failure, and
    named on one line."""
    bare = git_server.bare("students/alice")
    inner = _tree(bare, (b"100644", b"..", _stored(bare, b"x\n")))
    root = _tree(bare, (b"40000", b"week1", _tree(bare, (b"40000", b"a", _tree(
        bare, (b"40000", b"b\nc", inner))))))
    assert _refusal_of(cache, bare, root, tmp_path) == (
        "week1/a cannot be graded safely: week1/a/b\\nc/.. is a path git does not allow")


def _refusal_of(cache, bare, root: str, tmp_path) -> str:
    """Commit a tree to alice's main branch and return why extracting week1/a refuses it."""
    sha = git("commit-tree", root, "-m", "hostile", cwd=bare)
    git("update-ref", "refs/heads/main", sha, cwd=bare)
    cache.ensure_commit("students/alice", sha)
    with pytest.raises(UngradableTreeError) as caught:
        cache.extract("students/alice", sha, "week1/a", tmp_path / "out")
    return str(caught.value)


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> io.BytesIO:
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    stream.seek(0)
    return stream


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize("members", [
    [(_member("../escape.txt"), b"x")],
    [(_member("/abs/escape.txt"), b"x")],
    [(_member("a/link", tarfile.SYMTYPE, "/etc"), b"")],
    [(_member("a/link", tarfile.SYMTYPE, "../../elsewhere"), b"")],
    [(_member("a/dir", tarfile.SYMTYPE, "."), b""), (_member("a/dir/b/c.txt"), b"x")],
    [(_member("a/hard", tarfile.LNKTYPE, "a/x"), b"")],
    [(_member("a/fifo", tarfile.FIFOTYPE), b"")],
    [(_member("a/x.txt"), b"1"), (_member("a/x.txt"), b"2")],
    # `..` after a link climbs from where the link leads: q reads as a/y but leads to ../y.
    [(_member("a/x", tarfile.DIRTYPE), b""), (_member("a/d/p", tarfile.SYMTYPE, "../x"), b""),
     (_member("a/d/q", tarfile.SYMTYPE, "p/../../../elsewhere"), b"")],
    # The same with the link q passes through written after q.
    [(_member("a/d/q", tarfile.SYMTYPE, "p/../../../elsewhere"), b""),
     (_member("a/d/p", tarfile.SYMTYPE, "../x"), b""), (_member("a/x", tarfile.DIRTYPE), b"")],
], ids=["dot-dot", "absolute", "absolute-link", "link-out", "through-a-link", "hard-link",
        "fifo", "twice", "out-through-a-link", "out-through-a-later-link"])
def test_members_leaving_the_folder_or_of_other_kinds_are_refused(tmp_path, members):
    outside = tmp_path / "elsewhere"
    with pytest.raises(UngradableTreeError, match="cannot be graded safely"):
        _extract_stream(_tar(*members), tmp_path / "out" / "x", None, "week1/a")
    assert not outside.exists() and not (tmp_path / "out" / "escape.txt").exists()


def test_a_whole_tree_records_and_leaves_out_what_it_cannot_write_safely(tmp_path):
    """A reference's tree (left_out given) is extracted whole; only runs using those paths
    are refused (check_tree_paths)."""
    left_out: dict[str, str] = {}
    members = [(_member("week1/a/x.py"), b"x = 1\n"),
               (_member("week2/fifo", tarfile.FIFOTYPE), b""),
               (_member("week2/out", tarfile.SYMTYPE, "../../elsewhere"), b""),
               (_member("week3/x", tarfile.DIRTYPE), b""),
               (_member("week3/d/p", tarfile.SYMTYPE, "../x"), b""),
               (_member("week3/d/q", tarfile.SYMTYPE, "p/../../../../elsewhere"), b"")]

    _extract_stream(_tar(*members), tmp_path / "out", None, "the tree", left_out=left_out)

    assert left_out == {
        "week2/fifo": "week2/fifo is neither a file, a folder nor a link",
        "week2/out": "week2/out is a link to ../../elsewhere, outside the repository: commit the "
                     "file itself instead",
        "week3/d/q": "week3/d/q is a link to p/../../../../elsewhere, outside the repository: "
                     "commit the file itself instead"}
    assert (tmp_path / "out" / "week1" / "a" / "x.py").read_text() == "x = 1\n"
    assert (tmp_path / "out" / "week3" / "d" / "p").is_symlink()
    assert not any((tmp_path / "out" / path).is_symlink() for path in left_out)


FAR_TARGET = "../" * 100 + "data.csv"


@pytest.mark.parametrize("members, folder, detail", [
    ([(_member("week1/calc/data.csv", tarfile.SYMTYPE, "../../shared/data.csv"), b"")],
     "week1/calc", "week1/calc/data.csv is a link to ../../shared/data.csv, outside week1/calc"),
    # Read after every link is written: q leads out through p, which leads up.
    ([(_member("week1/calc/d/p", tarfile.SYMTYPE, ".."), b""),
      (_member("week1/calc/d/q", tarfile.SYMTYPE, "p/../x"), b"")],
     "week1/calc", "week1/calc/d/q is a link to p/../x, outside week1/calc"),
    ([(_member("week1/calc/data.csv", tarfile.SYMTYPE, FAR_TARGET), b"")], "week1/calc",
     f"week1/calc/data.csv is a link to {FAR_TARGET[:120]}... (308 characters), outside "
     "week1/calc"),
    ([(_member("week1/calc/data.csv", tarfile.SYMTYPE, "/etc/passwd"), b"")], "",
     "week1/calc/data.csv is a link to /etc/passwd, outside the repository"),
    # A message stays on one line: a line break or a tab in a name shows as Python writes it.
    ([(_member("week1/calc/da\nta.csv", tarfile.SYMTYPE, "../x\ty"), b"")], "week1/calc",
     "week1/calc/da\\nta.csv is a link to ../x\\ty, outside week1/calc"),
], ids=["up-and-out", "through-a-link", "far-target-cut", "whole-repository", "line-break"])
def test_a_link_leading_out_names_where_it_points_and_what_to_do(
        tmp_path, members, folder, detail):
    with pytest.raises(UngradableTreeError) as caught:
        _extract_stream(_tar(*members), tmp_path / "out", None, "week1/calc", folder=folder)
    assert str(caught.value) == (f"week1/calc cannot be graded safely: {detail}: commit the "
                                 "file itself instead")


def test_an_unknown_commit_is_missing_after_a_fetch(cache, git_server):
    git_server.commit("students/alice", {"README.md": "r\n"})
    with pytest.raises(MissingCommitError, match="is not in project students/alice"):
        cache.ensure_commit("students/alice", "f" * 40)


def test_a_failed_fetch_names_gits_error_and_not_where_the_cache_lies(cache, git_server):
    """A run's reason reaches students: git's error, without this host's paths."""
    git_server.commit("students/alice", {"README.md": "r\n"})
    cache.resolve_branch("students/alice", "main", max_age=0)
    newer = git_server.commit("students/alice", {"README.md": "r2\n"})
    # What a git process killed in the middle of a fetch leaves behind.
    (cache.mirror_path("students/alice") / "refs" / "heads" / "main.lock").touch()
    with pytest.raises(RepositoryError) as caught:
        cache.ensure_commit("students/alice", newer)
    message = str(caught.value)
    assert message.startswith("fetching students/alice failed: error: cannot lock ref "
                              "'refs/heads/main': Unable to create "
                              "'<repository cache>/")
    assert str(cache.root) not in message


def test_a_recently_fetched_branch_is_not_fetched_again_within_max_age(cache, git_server):
    first = git_server.commit("staff/reference", {"a.txt": "1\n"})
    assert cache.resolve_branch("staff/reference", "main") == first
    second = git_server.commit("staff/reference", {"a.txt": "2\n"})
    assert cache.resolve_branch("staff/reference", "main", max_age=3600) == first
    assert cache.resolve_branch("staff/reference", "main", max_age=0) == second


def test_a_tree_is_extracted_once_and_shared(cache, git_server):
    sha = git_server.commit("staff/reference", {"w1/a/test.yaml": "t\n", "w2/b/x.py": "x\n"})
    cache.resolve_branch("staff/reference", "main")
    tree = cache.tree("staff/reference", sha)
    assert (tree / "w1" / "a" / "test.yaml").read_text() == "t\n"
    assert cache.tree("staff/reference", sha) == tree
    assert sorted(cache.list_files("staff/reference", sha)) == ["w1/a/test.yaml", "w2/b/x.py"]


def test_a_tree_an_older_gradehook_extracted_is_not_reused(cache, git_server):
    """Before its attributes were switched off, `eol=crlf` data came out converted; such a tree,
    kept on disk under its commit's name, would give expected values a fresh worker does not."""
    sha = git_server.commit("staff/reference", {".gitattributes": "*.csv text eol=crlf\n",
                                                "w1/a/data.csv": "a,b\n1,2\n"})
    cache.resolve_branch("staff/reference", "main")
    older = cache.root / "trees" / "staff" / "reference" / sha
    (older / "w1" / "a").mkdir(parents=True)
    (older / "w1" / "a" / "data.csv").write_bytes(b"a,b\r\n1,2\r\n")
    tree = cache.tree("staff/reference", sha)
    assert (tree / "w1" / "a" / "data.csv").read_bytes() == b"a,b\n1,2\n"


def test_changed_paths_and_merge_base(cache, git_server):
    base = git_server.commit("students/alice", {"w1/a/x.py": "1\n"})
    head = git_server.commit("students/alice", {"w2/b/y.py": "2\n", "w1/a/x.py": None})
    cache.ensure_commit("students/alice", head)
    assert sorted(cache.changed_paths("students/alice", base, head)) == ["w1/a/x.py",
                                                                         "w2/b/y.py"]
    assert cache.merge_base("students/alice", base, head) == base


def test_merge_request_heads_are_fetched(cache, git_server):
    sha = git_server.commit("students/alice", {"a.txt": "1\n"})
    bare = git_server.bare("students/alice")
    fork_commit = git_server.commit("forks/bob", {"b.txt": "2\n"})
    fork = str(git_server.bare("forks/bob"))
    git("fetch", "-q", fork, f"{fork_commit}:refs/merge-requests/7/head", cwd=bare)
    assert cache.ensure_commit("students/alice", fork_commit)
    assert cache.has_commit("students/alice", sha)


def test_a_huge_file_of_a_small_push_is_never_held_in_memory_by_git(tmp_path, git_server):
    """git holds a blob under 512 MiB whole to fetch or archive it, unless told to stream it."""
    sha = git_server.commit_entries("students/alice", {
        b"week1/a/zeros.bin": ("100644", bytes(200 * 1024 * 1024))})
    # Packed, as GitLab keeps a repository: the serving side sends the blob as packed.
    git("repack", "-adq", cwd=git_server.bare("students/alice"))
    # A fresh process, whose children are only the git processes of the fetch and extraction.
    measure = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from pipeline.repos import RepositoryCache, UngradableTreeError\n"
        "cache = RepositoryCache(Path(sys.argv[1]), sys.argv[2])\n"
        "cache.ensure_commit('students/alice', sys.argv[3])\n"
        "try:\n"
        "    cache.extract('students/alice', sys.argv[3], 'week1/a', Path(sys.argv[4]),\n"
        "                  max_bytes=1024 * 1024)\n"
        "except UngradableTreeError:\n"
        "    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    largest_kib = subprocess.run(
        [sys.executable, "-c", measure, str(tmp_path / "cache"), git_server.base_url, sha,
         str(tmp_path / "out")], capture_output=True, text=True, check=True).stdout
    assert int(largest_kib) < 64 * 1024
