"""Local bare git repositories standing where GitLab's would be, with helpers to commit."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SUBMODULE_MODE = "160000"
GIT_IDENTITY = ["-c", "user.name=Test Student", "-c", "user.email=student@example.com",
                "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"]


def git(*args: str, cwd: Path) -> str:
    """Run git in a directory and return its stripped stdout; fail loudly on error."""
    result = subprocess.run(["git", *GIT_IDENTITY, *args], cwd=cwd, capture_output=True,
                            text=True, check=True)
    return result.stdout.strip()


class GitServer:
    """A folder of bare repositories at <root>/<project path>.git, like GitLab's clone URLs."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def base_url(self) -> str:
        """Return the clone base to configure (gitlab.clone_base)."""
        return f"file://{self.root}"

    def bare(self, project_path: str) -> Path:
        """Return the bare repository of a project, creating it if needed."""
        path = self.root / f"{project_path}.git"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            git("init", "--bare", "-q", str(path), cwd=self.root)
        return path

    def commit(self, project_path: str, files: dict[str, str | None], *, branch: str = "main",
               message: str = "update", links: dict[str, str] | None = None) -> str:
        """Commit files (None deletes) and symbolic links (name -> target) on a branch of a
        project and push; return the SHA."""
        bare = self.bare(project_path)
        work = self.root / ".work" / project_path
        if not work.exists():
            work.parent.mkdir(parents=True, exist_ok=True)
            git("clone", "-q", str(bare), str(work), cwd=self.root)
        has_branch = git("ls-remote", "--heads", str(bare), branch, cwd=work)
        if has_branch:
            git("fetch", "-q", "origin", branch, cwd=work)
            git("checkout", "-q", "-B", branch, f"origin/{branch}", cwd=work)
        elif _has_head(work):
            git("checkout", "-q", "-B", branch, cwd=work)
        else:
            git("checkout", "-q", "--orphan", branch, cwd=work)
        for name, content in files.items():
            target = work / name
            if content is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        for name, link_target in (links or {}).items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).symlink_to(link_target)
        git("add", "-A", cwd=work)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=work)
        git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
        return git("rev-parse", "HEAD", cwd=work)

    def commit_entries(self, project_path: str, entries: dict[bytes, tuple[str, bytes]], *,
                       branch: str = "main") -> str:
        """Commit tree entries (path -> (mode, content)) on top of a branch, through git's
        plumbing, which takes paths and links no working tree could hold; return the SHA.

        content is a file's bytes, a link's target, or a submodule's commit SHA (mode 160000).
        """
        bare = self.bare(project_path)
        index = bare / "plumbing-index"
        env = {**os.environ, "GIT_INDEX_FILE": str(index)}

        def plumbing(*args: str, data: bytes = b"") -> str:
            return subprocess.run(["git", *GIT_IDENTITY, *args], cwd=bare, env=env, input=data,
                                  capture_output=True, check=True).stdout.decode().strip()
        parent = subprocess.run(["git", "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
                                cwd=bare, capture_output=True, text=True).stdout.strip()
        if parent:
            plumbing("read-tree", parent)

        def object_id(mode: str, content: bytes) -> str:
            return content.decode() if mode == SUBMODULE_MODE else \
                plumbing("hash-object", "-w", "--stdin", data=content)
        listing = b"".join(f"{mode} {object_id(mode, content)}\t".encode() + path + b"\0"
                           for path, (mode, content) in entries.items())
        plumbing("update-index", "--add", "-z", "--index-info", data=listing)
        tree = plumbing("write-tree")
        index.unlink()
        sha = plumbing("commit-tree", tree, "-m", "update", *(["-p", parent] if parent else []))
        plumbing("update-ref", f"refs/heads/{branch}", sha)
        return sha

    def commit_refused_name(self, project_path: str, folder: str, name: bytes, *,
                            branch: str = "main") -> str:
        """Commit a file whose name git refuses to write (`..`, `.git`) into a folder on top
        of a branch, through trees written as they are, as only a hostile push makes them;
        return the SHA."""
        bare = self.bare(project_path)

        def plumbing(*args: str, data: bytes = b"") -> bytes:
            return subprocess.run(["git", *GIT_IDENTITY, *args], cwd=bare, input=data,
                                  capture_output=True, check=True).stdout.strip()
        blob = plumbing("hash-object", "-w", "--stdin", data=b"x\n")

        def rebuilt(tree: bytes | None, parts: list[str]) -> bytes:
            entries = [] if tree is None else \
                [e for e in plumbing("ls-tree", "-z", tree.decode()).split(b"\0") if e]
            if not parts:
                entries.append(b"100644 blob " + blob + b"\t" + name)
            else:
                step = parts[0].encode()
                inner = next((e.split(b" ")[2].split(b"\t")[0] for e in entries
                              if e.split(b"\t", 1)[1] == step), None)
                entries = [e for e in entries if e.split(b"\t", 1)[1] != step]
                entries.append(b"040000 tree " + rebuilt(inner, parts[1:]) + b"\t" + step)
            return plumbing("mktree", "-z", data=b"".join(e + b"\0" for e in entries))
        parent = plumbing("rev-parse", f"refs/heads/{branch}").decode()
        root = rebuilt(f"{parent}^{{tree}}".encode(), folder.split("/")).decode()
        sha = plumbing("commit-tree", root, "-m", "hostile", "-p", parent).decode()
        plumbing("update-ref", f"refs/heads/{branch}", sha)
        return sha


def _has_head(work: Path) -> bool:
    return subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=work,
                          capture_output=True).returncode == 0
