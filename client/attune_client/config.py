"""Where the `attune` command keeps the server URL and the API key: config.toml in the user's
config folder ($XDG_CONFIG_HOME/attune, ~/.config/attune, %APPDATA%\\attune on Windows),
readable by its owner only. ATTUNE_URL and ATTUNE_API_KEY override it (for CI jobs)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from attune_client.errors import AttuneError

DEFAULT_URL = "http://127.0.0.1:5000"  # `make run`
FILE_MODE = 0o600
FOLDER_MODE = 0o700


@dataclass(frozen=True)
class Settings:
    """The server and the key the command uses."""

    url: str
    key: str | None


def config_dir() -> Path:
    """The folder config.toml lives in."""
    if override := os.environ.get("ATTUNE_CONFIG_DIR"):
        return Path(override)
    if sys.platform == "win32" and (appdata := os.environ.get("APPDATA")):
        return Path(appdata) / "attune"
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "attune"


def config_path() -> Path:
    """The config file."""
    return config_dir() / "config.toml"


def load_settings() -> Settings:
    """The saved URL and key, with ATTUNE_URL / ATTUNE_API_KEY taking precedence."""
    saved: dict[str, object] = {}
    path = config_path()
    if path.exists():
        try:
            saved = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise AttuneError(f"{path} is not valid TOML ({exc}); run `attune login`.") from exc
    url = os.environ.get("ATTUNE_URL") or str(saved.get("url") or DEFAULT_URL)
    key = os.environ.get("ATTUNE_API_KEY") or saved.get("key")
    return Settings(url.rstrip("/"), str(key) if key else None)


def save_settings(url: str, key: str) -> Path:
    """Write config.toml readable by its owner only."""
    # A JSON string of ASCII is a valid TOML basic string.
    write_private(config_path(), f"url = {json.dumps(url)}\nkey = {json.dumps(key)}\n")
    return config_path()


def write_private(path: Path, text: str) -> None:
    """Replace `path` in one step with a file of mode 600 in a folder of mode 700."""
    path.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    # mkstemp makes the file 600 from the start: the key is never readable by others.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def remembered_dataset(url: str, folder: Path) -> int | None:
    """The dataset an earlier `attune datasets upload` of this folder to this server used."""
    return _uploads().get(f"{url} {folder.resolve()}")


def remember_dataset(url: str, folder: Path, dataset_id: int) -> None:
    """Note the dataset this folder went into, so that a re-run resumes into it."""
    uploads = {**_uploads(), f"{url} {folder.resolve()}": dataset_id}
    write_private(config_dir() / "uploads.json", json.dumps(uploads, indent=1))


def _uploads() -> dict[str, int]:
    try:
        data = json.loads((config_dir() / "uploads.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, int)} if isinstance(data, dict) else {}


def forget_settings() -> bool:
    """Remove the saved key (and URL); True if there was one."""
    path = config_path()
    if not path.exists():
        return False
    path.unlink()
    return True
