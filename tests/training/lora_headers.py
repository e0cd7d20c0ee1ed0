"""Checks on the headers of exported LoRA files: what tools classify them by, and no paths."""

from __future__ import annotations

import json
import re
from pathlib import Path

from catalogue.families import family_facts
from training.results import TrainResult

# An absolute POSIX path or a Windows drive path anywhere in a value (URLs' "//" excepted).
LOCAL_PATH = re.compile(r"(?<![\w.:/-])/[\w.-]+/|[A-Za-z]:\\")


def header(path: Path) -> dict[str, str]:
    """The whole safetensors header metadata, read from the file's JSON header."""
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + size]).get("__metadata__", {})


def local_paths(metadata: dict[str, str]) -> dict[str, str]:
    """Header keys whose value holds something that looks like a local file path."""
    return {key: value for key, value in metadata.items() if LOCAL_PATH.search(value)}


def assert_files_are_classifiable(result: TrainResult, family: str) -> None:
    """Every exported file: ModelSpec architecture, base version, module, and no local path."""
    facts = family_facts(family)
    assert result.lora_files
    for kind, path in result.lora_files.items():
        metadata = header(Path(path))
        assert metadata["modelspec.architecture"] == f"{facts.architecture}/lora", kind
        assert metadata["modelspec.implementation"] == facts.implementation
        assert metadata["ss_base_model_version"] == facts.base_model_version
        assert metadata["modelspec.sai_model_spec"] and metadata["modelspec.date"]
        module = metadata.get("ss_network_module")
        assert module == (facts.network_module or None if kind.startswith("comfyui") else None)
        assert local_paths(metadata) == {}, kind
