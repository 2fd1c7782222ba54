"""Save and load one trained adapter folder: the method's files, the scorer head, a manifest.

Layout of a folder::

    coldstart.json              manifest: method, scorer, configs, base-model fingerprint
    scorer_head.safetensors     the scorer's own weights (its head) and the prior weights
    prior_tables.safetensors    the fitted prior tables, when the scorer has priors
    <method files>              e.g. adapter_config.json + adapter_model.safetensors (peft)

Saving is atomic: everything is written to a hidden sibling folder which then replaces the
target, so a crash mid-save leaves the previous adapter in place. Loading reads weights with
safetensors only and refuses pickle files before any of them is opened.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from coldstart_peft import __version__
from coldstart_peft.assembly import build_scorer
from coldstart_peft.errors import (
    AdapterError,
    BaseModelUnavailableError,
    ConfigError,
    CorruptAdapterError,
    FingerprintMismatchError,
    OverwriteRefusedError,
    TrainingDivergedError,
    UnsafeFileError,
    UnsafePathError,
)
from coldstart_peft.finite import non_finite
from coldstart_peft.host import PluginHost, default_host
from coldstart_peft.load_options import merged_load_options
from coldstart_peft.manifest_check import check_manifest_fields
from coldstart_peft.method import count_parameters
from coldstart_peft.outputs import replace_dir
from coldstart_peft.portable import make_peft_files_portable
from coldstart_peft.priors.storage import migrate_scorer_config, priors_from_manifest, save_tables
from coldstart_peft.provenance import environment_info
from coldstart_peft.scorer import Scorer
from coldstart_peft.weight_check import check_peft_weights

MANIFEST = "coldstart.json"
HEAD = "scorer_head.safetensors"
FORMAT = "coldstart-peft-adapter"
FORMAT_VERSION = 2
"""2: priors are a component of their own, keyed by item id (1: text-keyed, inside the scorer)."""
UNSAFE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".dill"}


def check_no_pickles(directory: Path) -> None:
    """Refuse a folder holding any file that would be unpickled by a weights loader.

    Raises:
        UnsafeFileError: naming the file.
    """
    for path in Path(directory).rglob("*"):
        if path.suffix.lower() in UNSAFE_SUFFIXES:
            raise UnsafeFileError(
                f"{path} is a pickle-based file ({path.suffix}); loading it could run arbitrary code, "
                "so coldstart-peft only reads safetensors. Convert it with safetensors.torch.save_file "
                "in an environment you trust, then delete it from the folder."
            )


def safe_path(root: str | Path, relative: str | Path) -> Path:
    """Return ``root / relative``, refusing any path that would lead out of ``root``.

    Manifests and plugins name files by relative path; a copied or hand-edited folder could
    name ``../../.ssh/id_rsa`` or an absolute path, or hold a symlink pointing elsewhere.

    Raises:
        UnsafePathError: ``relative`` is absolute, climbs out with ``..``, or resolves
            (through symlinks) to a place outside ``root``.
    """
    root = Path(root)
    relative = Path(relative)
    if relative.is_absolute() or relative.anchor or ".." in relative.parts:
        raise UnsafePathError(
            f"path {str(relative)!r} in {root} is absolute or climbs out with '..'; files of an adapter "
            "folder are named relative to it. Fix the manifest, or save the adapter again"
        )
    resolved = (root / relative).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise UnsafePathError(
            f"{root / relative} resolves to {resolved}, outside the folder {root} (a symlink points out); "
            "replace the link with a copy of the file"
        )
    return root / relative


def check_adapter_folder(directory: str | Path) -> None:
    """Refuse a folder holding pickle files or symlinks that lead out of it.

    Raises:
        UnsafeFileError: a pickle-based file (see :func:`check_no_pickles`).
        UnsafePathError: a symlink resolving outside ``directory``.
    """
    directory = Path(directory)
    check_no_pickles(directory)
    for path in directory.rglob("*"):
        if path.is_symlink():
            safe_path(directory, path.relative_to(directory))


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file, refusing truncated files and non-finite weights.

    Raises:
        CorruptAdapterError: the file is missing, unreadable or holds NaN/Inf.
    """
    if not path.is_file():
        raise CorruptAdapterError(f"missing weights file {path}; the adapter folder is incomplete, save it again")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CorruptAdapterError(f"{path} is not a readable safetensors file ({exc}); it may be truncated") from exc
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CorruptAdapterError(f"{path}: tensor {name!r} holds NaN or Inf values; retrain or restore it")
    return tensors


def read_json_manifest(path: Path, expected_format: str, missing: str, remedy: str) -> dict[str, Any]:
    """Read a JSON manifest and check its ``format`` field.

    Args:
        path: the manifest file.
        expected_format: the ``format`` value it must carry.
        missing: the error message when the file does not exist.
        remedy: what to do when the file is not valid JSON.

    Raises:
        AdapterError: missing file or another format.
        CorruptAdapterError: unreadable JSON.
    """
    if not path.is_file():
        raise AdapterError(missing)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:  # Recursion: nested too deeply
        raise CorruptAdapterError(f"{path} is not valid JSON ({type(exc).__name__}: {exc}); {remedy}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != expected_format:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise AdapterError(f"{path} is not a {expected_format} manifest (format {found!r})")
    return manifest


def read_manifest(directory: Path) -> dict[str, Any]:
    """Read and check an adapter folder's manifest: its format, and every field loading reads (see
    :mod:`coldstart_peft.manifest_check`)."""
    manifest = read_json_manifest(
        Path(directory) / MANIFEST, FORMAT,
        missing=f"{directory} has no {MANIFEST}; it is not a coldstart-peft adapter folder",
        remedy="save the adapter again",
    )
    return check_manifest_fields(manifest, Path(directory) / MANIFEST)


def check_replaceable(directory: str | Path) -> None:
    """Raise unless ``directory`` is absent, empty, or an adapter folder this library wrote.

    Saving replaces the folder as a whole, so a folder holding anything else (the training
    data, someone's notes) would be lost with it.

    Raises:
        OverwriteRefusedError: ``directory`` is a file, or a folder that is not an adapter.
    """
    directory = Path(directory)
    if not directory.exists() and not directory.is_symlink():
        return
    if not directory.is_dir() or directory.is_symlink():
        raise OverwriteRefusedError(f"{directory} exists and is not an adapter folder; choose another path")
    if not any(directory.iterdir()):
        return
    try:
        read_manifest(directory)
    except AdapterError:
        raise OverwriteRefusedError(
            f"{directory} holds files that are not an adapter this library wrote; saving would replace the whole "
            "folder and lose them. Choose a new path (e.g. a subfolder), or move the files away first"
        ) from None


def recover_folder(folder: str | Path) -> Path:
    """Return ``folder``, first restoring it if a crash hit the rename window of an atomic save.

    :func:`save_adapter` moves the old folder to a hidden ``.<name>.old-*`` sibling and then
    the new one into place; a crash between the two renames leaves neither at ``folder``. The
    old copy is complete, so it is moved back.
    """
    folder = Path(folder)
    if not folder.exists():
        olds = sorted(folder.parent.glob(f".{folder.name}.old-*"), key=lambda p: p.stat().st_mtime)
        if olds:
            os.replace(olds[-1], folder)
    return folder


def save_adapter(
    scorer: Scorer, directory: str | Path, metrics: dict[str, Any] | None = None, extra: dict[str, Any] | None = None
) -> Path:
    """Save the trained scorer's method weights, head and manifest to ``directory`` atomically.

    Args:
        scorer: a scorer with a method applied (see :func:`~coldstart_peft.assembly.apply_method`).
        directory: the adapter folder to create or replace.
        metrics: validation metrics to record in the manifest.
        extra: any other JSON-serializable facts to record.

    Returns:
        The adapter folder.

    Raises:
        AdapterError: the scorer has no method, or writing failed (disk full, no permission);
            a previous adapter at ``directory`` is then left as it was.
        OverwriteRefusedError: ``directory`` exists and is not an adapter folder.
        TrainingDivergedError: a weight is NaN or infinite; nothing is written.
    """
    method = scorer.method
    if method is None:
        raise AdapterError("the scorer has no method applied; train it (or apply_method) before saving")
    broken = non_finite(scorer.state_dict())
    if broken:
        raise TrainingDivergedError(
            f"not saving {directory}: {len(broken)} weight tensors hold NaN or infinite values (first: {broken[0]}); "
            "the training diverged. Train again with a lower learning rate"
        )
    target = recover_folder(directory)
    check_replaceable(target)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as exc:
        raise AdapterError(f"cannot write the adapter folder {target} ({exc}); choose a writable location") from exc
    try:
        method.save(scorer.backbone, tmp)
        make_peft_files_portable(tmp, scorer.base_model_name)
        priors = save_tables(scorer.priors, tmp)
        save_file({k: v.detach().contiguous().cpu() for k, v in scorer.head_state_dict().items()}, str(tmp / HEAD))
        trainable, total = count_parameters(scorer)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "library_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "method": method.name,
            "method_config": method.config.to_dict(),
            "scorer": scorer.name,
            "scorer_config": scorer.config.to_dict(),
            "priors": priors,
            "base_model": {"name_or_path": scorer.base_model_name, "fingerprint": scorer.base_fingerprint,
                           "load_options": getattr(scorer, "load_options", None) or {}},
            "trainable_params": trainable,
            "total_params": total,
            "metrics": metrics or {},
            "extra": extra or {},
            "precision": scorer.precision,
            "environment": environment_info(),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=_json_default), encoding="utf-8")
        replace_dir(tmp, target)
    except OSError as exc:  # disk full, quota, permissions: the previous adapter is still in place
        shutil.rmtree(tmp, ignore_errors=True)
        raise AdapterError(
            f"saving the adapter to {target} failed ({exc}); any previous adapter there is untouched. "
            "Free disk space or choose a writable location, then save again"
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def adapter_bytes(directory: str | Path) -> int:
    """Total size on disk of an adapter folder's files."""
    return sum(p.stat().st_size for p in Path(directory).rglob("*") if p.is_file())


def adapter_fingerprint(directory: str | Path, host: PluginHost | None = None) -> str:
    """Identify one saved adapter by the bytes of its manifest and weight files.

    Anything derived from an adapter (an item index of its embeddings) records this digest,
    so it can tell when the adapter it came from was retrained or replaced. Other files in
    the folder (an ``index/`` cache, notes) are left out, so writing them never changes it.

    Args:
        directory: a folder written by :func:`save_adapter`.
        host: plugin host to resolve the method in (it names its weight files).

    Returns:
        A 16-hex-digit digest.

    Raises:
        AdapterError: the folder is not an adapter folder.
        CorruptAdapterError: a weight file the manifest implies is missing.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    method = (host or default_host()).method(manifest["method"])(manifest["method_config"])
    digest = hashlib.sha256()
    for name in [MANIFEST, HEAD, *sorted(method.weight_files())]:
        path = directory / name
        if not path.is_file():
            raise CorruptAdapterError(f"missing file {path}; the adapter folder is incomplete, save it again")
        digest.update(name.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def load_adapter(
    directory: str | Path, base_model: str | Path | None = None, host: PluginHost | None = None, *,
    allow_download: bool = False, load_options: dict[str, Any] | None = None, merge: bool = False,
) -> Scorer:  # fmt: skip
    """Load an adapter folder onto a fresh base model, ready to score.

    The base model the manifest names is only looked for on this machine (a folder, or the
    local Hugging Face cache): an adapter folder may come from anyone, and its manifest must not
    make loading download a model. Pass ``base_model`` to load onto one you chose (it may be
    downloaded), or ``allow_download=True`` to trust the manifest's.

    Args:
        directory: a folder written by :func:`save_adapter`.
        base_model: the base model to load onto; ``None`` uses the one recorded in the manifest.
        host: plugin host to resolve the method and scorer in.
        allow_download: let a hub id recorded in the manifest be downloaded.
        load_options: base-model load options (``dtype``, ``device_map``, ...) overriding, key by key,
            those recorded at training time (which apply otherwise; see
            :func:`~coldstart_peft.load_options.merged_load_options`).
        merge: fold the method's weights into the base for faster scoring
            (:meth:`~coldstart_peft.Scorer.merge_for_inference`; scores equal to float rounding,
            not bit for bit). The command line's ``evaluate``, ``recommend`` and ``search`` do.

    Returns:
        The scorer in eval mode, with ``manifest`` attached.

    Raises:
        UnsafeFileError: the folder holds pickle files.
        UnsafePathError: a file or symlink in it leads out of the folder.
        FingerprintMismatchError: ``base_model`` differs from the one the adapter was trained on.
        BaseModelUnavailableError: the recorded base model is not on this machine (and is not downloaded).
        CorruptAdapterError: a weights file is missing, truncated or non-finite, or lacks tensors
            its method needs (see :mod:`coldstart_peft.weight_check`).
    """
    directory = recover_folder(directory)
    check_adapter_folder(directory)
    manifest = read_manifest(directory)
    host = host or default_host()
    method = host.method(manifest["method"])(manifest["method_config"])
    recorded = manifest["base_model"]
    scorer_config = migrate_scorer_config(manifest["scorer_config"], directory)
    priors = priors_from_manifest(manifest.get("priors"), directory, read_safetensors)
    try:
        check_recorded = merged_load_options(recorded.get("load_options"), None)
    except ConfigError as exc:  # the manifest was edited: name the file, not the caller's options
        raise CorruptAdapterError(f"{directory / MANIFEST}: base_model.load_options: {exc}; save the adapter again") from None
    options = merged_load_options(check_recorded, load_options)
    scorer = _build_on_base(manifest, directory, base_model, scorer_config, host, allow_download, options)
    if scorer.base_fingerprint != recorded["fingerprint"]:
        raise FingerprintMismatchError(
            f"adapter {directory} was trained on base model {recorded['name_or_path']!r} "
            f"(fingerprint {recorded['fingerprint']}), but the given base model has fingerprint "
            f"{scorer.base_fingerprint}; load it onto the same base model it was trained on"
        )
    head = read_safetensors(safe_path(directory, HEAD))
    for name in method.weight_files():
        path = safe_path(directory, name)
        if name.endswith(".safetensors"):
            read_safetensors(path)
        elif not path.is_file():
            raise CorruptAdapterError(f"missing file {path}; the adapter folder is incomplete")
    for parameter in scorer.backbone.parameters():
        parameter.requires_grad_(False)
    scorer.attach_priors(priors)
    try:
        loaded = method.load(scorer.backbone, directory)
        check_peft_weights(loaded, directory)  # before the scorer takes it: half an adapter never scores
        scorer.backbone = loaded
        scorer.load_head_state_dict(head)  # load_state_dict raises RuntimeError on a shape mismatch
    except (RuntimeError, ValueError, KeyError) as exc:
        raise CorruptAdapterError(f"could not apply the weights in {directory}: {exc}") from exc
    scorer.method = method
    scorer.manifest = manifest
    scorer.eval()
    if merge:
        scorer.merge_for_inference()
    return scorer


def _build_on_base(manifest, directory: Path, base_model, scorer_config, host, allow_download: bool, options) -> Scorer:
    """The scorer on the caller's base model, or on the manifest's found locally (downloaded only if allowed)."""
    if base_model is not None:
        return build_scorer(manifest["scorer"], base_model, scorer_config, host, load_options=options)
    recorded = manifest["base_model"]["name_or_path"]
    try:
        return build_scorer(manifest["scorer"], recorded, scorer_config, host, local_files_only=not allow_download,
                            load_options=options)  # fmt: skip
    except BaseModelUnavailableError as exc:
        raise BaseModelUnavailableError(
            f"adapter {directory} was trained on base model {recorded!r}, which is not on this machine ({exc}). "
            "Loading an adapter never downloads the base model its manifest names. Pass the base model you trust: "
            "load_adapter(..., base_model='PATH or hub id') or --base-model on the command line; "
            "or load_adapter(..., allow_download=True) to fetch the recorded one"
        ) from None
