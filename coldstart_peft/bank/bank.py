"""``AdapterBank``: one base model, one adapter per domain, routed per scored pair.

Example:
    >>> bank = AdapterBank.load("runs/beauty-bank")
    >>> bank.domains
    ['Bath & Body', 'Fragrance', 'Hair Care', 'Makeup', 'Skin Care', 'Tools & Accessories']
    >>> bank.score(["Bought: argan oil"] * 2, ["Shampoo", "Lip gloss"], domains=["Hair Care", "Makeup"])
    >>> bank.rank("Bought: argan oil", ["Shampoo", "Lip gloss"], domain="Hair Care").order
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from coldstart_peft.artifact import (
    HEAD,
    check_adapter_folder,
    read_manifest as read_adapter_manifest,
    read_safetensors,
    recover_folder,
    safe_path,
)
from coldstart_peft.assembly import build_scorer
from coldstart_peft.bank.fallback import FallbackConfig, Route, nearest_weights
from coldstart_peft.bank.layout import BASE, GLOBAL, GLOBAL_FOLDER, copy_adapter, folder_for, read_manifest, slugify, write_manifest
from coldstart_peft.bank.mixed import score_mixed
from coldstart_peft.bank.prior_tables import share_tables
from coldstart_peft.bank.slots import HeadSlots, make_slots
from coldstart_peft.errors import (
    AdapterError,
    ConfigError,
    CorruptAdapterError,
    EmptyBankError,
    FingerprintMismatchError,
    UnknownNameError,
    UnsafePathError,
)
from coldstart_peft.host import PluginHost, default_host
from coldstart_peft.method import Method
from coldstart_peft.priors import Priors, PriorTables
from coldstart_peft.priors.storage import SHARED_FOLDER, migrate_scorer_config, priors_from_manifest
from coldstart_peft.scorer import Scorer


@dataclasses.dataclass
class Ranking:
    """Candidates of one user, best first.

    Attributes:
        order: candidate indices, highest score first.
        scores: the score of each candidate, in the input order.
        routes: the route that served each candidate's domain.
    """

    order: list[int]
    scores: np.ndarray
    routes: list[Route]


def _locked(method):
    """Run ``method`` holding the bank's lock."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return run


class AdapterBank:
    """Domain adapters sharing one base model; build it with :meth:`load`.

    Concurrency: every public call is safe from several threads. The bank switches one shared
    model and head between adapters, so calls that touch them (:meth:`score`, :meth:`rank`,
    :meth:`route`, :meth:`add`'s swap, :meth:`remove`, :meth:`merged_scorer`) take turns on
    one lock; each returns exactly what it would single-threaded, for the adapters live when
    it ran. :meth:`add` reads and checks the new folder before taking the lock, so a hot swap
    blocks scoring only for the attach itself, and readers see the old adapter or the new one,
    never a mix. :meth:`activate` followed by direct use of ``bank.scorer`` is for one thread;
    from threads use :meth:`serving`, which holds the lock for its block.

    Args:
        scorer: the scorer on the bare base model (its backbone gains the adapters).
        method: the method every adapter was trained with.
        manifest: the bank manifest (see :mod:`coldstart_peft.bank.layout`).
        root: the bank folder, needed to persist :meth:`add` and :meth:`remove`.
        fallback: how unknown and cold domains are served.
    """

    def __init__(self, scorer: Scorer, method: Method, manifest: dict, root: Path | None = None,
                 fallback: FallbackConfig | None = None):  # fmt: skip
        self.scorer, self.method, self.manifest, self.root = scorer, method, manifest, root
        self.fallback = fallback or FallbackConfig()
        self._slots = make_slots(scorer, method)
        self._heads = HeadSlots(scorer)
        self._folders: dict[str, Path] = {}  # domain (or GLOBAL) -> adapter folder
        self._names: dict[str, str] = {}  # domain (or GLOBAL) -> adapter name on the model, once attached
        self._routes: dict[str | None, Route] = {}
        self._counter = 0
        self._cold = {e["name"]: e for e in manifest.get("domains", []) if e.get("status") != "trained"}
        self._tables: dict[str, PriorTables] = {}  # adapter name -> its prior tables (shared objects)
        # One re-entrant lock around everything that reads or changes the shared model and heads:
        # a bank serves one adapter at a time, so calls from threads take turns (see the class docstring).
        self._lock = threading.RLock()
        self._by_digest: dict[str, PriorTables] = {}

    @classmethod
    def load(
        cls, root: str | Path, base_model: str | Path | None = None, lazy: bool = False,
        fallback: FallbackConfig | None = None, host: PluginHost | None = None,
    ) -> AdapterBank:  # fmt: skip
        """Load a bank folder: the base model once, then every domain adapter onto it.

        Args:
            root: a folder written by :func:`~coldstart_peft.bank.train_per_domain` or
                :class:`~coldstart_peft.bank.BankWriter`.
            base_model: the base model to load onto; ``None`` uses the manifest's.
            lazy: check every adapter's manifest now but read its weights on first use.
            fallback: the fallback chain for unknown and cold domains.
            host: plugin host resolving the method and scorer.

        Raises:
            FingerprintMismatchError: ``base_model`` (or an adapter) belongs to another base model.
            UnsafeFileError: an adapter folder holds a pickle-based file.
            CorruptAdapterError: a weights file is missing, truncated or non-finite.
        """
        root = Path(root)
        manifest = read_manifest(root)
        host = host or default_host()
        method = host.method(manifest["method"])(manifest["method_config"])
        recorded = manifest["base_model"]
        scorer = build_scorer(manifest["scorer"], base_model if base_model is not None else recorded["name_or_path"],
                              migrate_scorer_config(manifest["scorer_config"], root), host)  # fmt: skip
        if manifest.get("priors"):  # before the head slots are made: the prior weights are part of each head
            scorer.attach_priors(Priors(manifest["priors"]["features"]))
        if scorer.base_fingerprint != recorded["fingerprint"]:
            raise FingerprintMismatchError(
                f"the bank {root} was trained on base model {recorded['name_or_path']!r} (fingerprint "
                f"{recorded['fingerprint']}), but the given base model has fingerprint {scorer.base_fingerprint}; "
                "load it onto the base model it was trained on"
            )
        for parameter in scorer.parameters():
            parameter.requires_grad_(False)
        scorer.method = method
        scorer.eval()
        bank = cls(scorer, method, manifest, root, fallback)
        if manifest.get("global"):
            bank._register(GLOBAL, bank._folder(manifest["global"].get("folder", GLOBAL_FOLDER)), lazy)
        for entry in manifest["domains"]:
            if entry.get("status") == "trained":
                bank._register(entry["name"], bank._folder(entry.get("folder")), lazy)
        return bank

    def _folder(self, relative) -> Path:
        """``root / relative`` for a folder the bank manifest names, refusing any that leads out of the root.

        A manifest is as untrusted as the weights beside it: a folder of ``../victim`` or an
        absolute path would make a persisted ``add`` or ``remove`` write outside the bank.
        """
        if not isinstance(relative, str) or Path(relative).name != relative or relative in ("", ".", "..", SHARED_FOLDER):
            raise UnsafePathError(
                f"the bank manifest in {self.root} names the folder {relative!r}; a domain folder is one plain name "
                "directly inside the bank root. Fix manifest.json or rebuild the bank"
            )
        return safe_path(self.root, relative)

    @property
    def domains(self) -> list[str]:
        """Domains with an adapter of their own, sorted."""
        return sorted(d for d in self._folders if d != GLOBAL)

    @property
    def cold_domains(self) -> list[str]:
        """Domains the manifest lists without an adapter (served by the fallback chain)."""
        return sorted(d for d in self._cold if d not in self._folders)

    @property
    def has_global(self) -> bool:
        """Whether the bank holds a global adapter."""
        return GLOBAL in self._folders

    def __len__(self) -> int:
        return len(self.domains)

    def __contains__(self, domain: object) -> bool:
        return domain in self._folders and domain != GLOBAL

    def __repr__(self) -> str:
        return (f"AdapterBank(method={self.method.name!r}, domains={self.domains}, "
                f"global={self.has_global}, root={str(self.root) if self.root else None!r})")  # fmt: skip

    # -- checking and attaching adapter folders -------------------------------------------

    def _check_meta(self, folder: Path) -> dict:
        check_adapter_folder(folder)
        manifest = read_adapter_manifest(folder)
        fingerprint = self.manifest["base_model"]["fingerprint"]
        if manifest["base_model"]["fingerprint"] != fingerprint:
            raise FingerprintMismatchError(
                f"adapter {folder} was trained on base model {manifest['base_model']['name_or_path']!r} "
                f"(fingerprint {manifest['base_model']['fingerprint']}), but this bank's base model has "
                f"fingerprint {fingerprint}; retrain it on the bank's base model"
            )
        for key, mine in (("method", self.method.name), ("scorer", self.scorer.name)):
            if manifest[key] != mine:
                raise AdapterError(f"adapter {folder} uses {key} {manifest[key]!r} but the bank uses {mine!r}; "
                                   "a bank holds adapters of one method and scorer")  # fmt: skip
        if migrate_scorer_config(manifest["scorer_config"], folder) != self.scorer.config.to_dict():
            raise AdapterError(f"adapter {folder} was trained with scorer settings {manifest['scorer_config']}, "
                               f"the bank's are {self.scorer.config.to_dict()}; retrain it with the bank's settings")  # fmt: skip
        mine = list(self.scorer.priors.features) if self.scorer.priors is not None else None
        theirs = (manifest.get("priors") or {}).get("features")
        if mine != theirs:
            raise AdapterError(f"adapter {folder} was trained with prior features {theirs}, the bank's are {mine}; "
                               "a bank holds adapters composed with the same priors: retrain it with the bank's")  # fmt: skip
        return manifest

    def _read_weights(self, folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, torch.Tensor]]]:
        """The head's tensors and each method weights file's tensors by file name, all checked.

        The slots attach from these tensors, so every file is read once per ``add``.
        """
        head = read_safetensors(folder / HEAD)
        self._heads.check(head, str(folder))
        weights = {}
        for name in self.method.weight_files():
            if name.endswith(".safetensors"):
                weights[name] = read_safetensors(folder / name)
            elif not (folder / name).is_file():
                raise CorruptAdapterError(f"missing file {folder / name}; the adapter folder is incomplete")
        return head, weights

    def _new_name(self, domain: str) -> str:
        self._counter += 1
        return f"{'global' if domain == GLOBAL else slugify(domain)}__{self._counter}"

    def _read_tables(self, folder: Path) -> PriorTables | None:
        """The prior tables of the adapter in ``folder``: its own file or the bank root's, read once per digest."""
        entry = read_adapter_manifest(folder).get("priors")
        known = self._by_digest.get(entry["tables"]) if isinstance(entry, dict) and isinstance(entry.get("tables"), str) else None
        priors = priors_from_manifest(entry, folder, read_safetensors, tables=known, shared_root=self.root)
        if priors is None:
            return None
        return self._by_digest.setdefault(priors.tables.digest(), priors.tables)

    def _read(self, folder: Path) -> tuple:
        """Everything attaching ``folder`` needs, read and checked; touches nothing the bank serves from."""
        head, weights = self._read_weights(folder)
        return head, weights, self._read_tables(folder)

    def _attach(self, folder: Path, domain: str, files: tuple | None = None) -> str:
        """Load ``folder`` (read first unless ``files`` are given) on the model; return its adapter name."""
        head, weights, tables = files if files is not None else self._read(folder)
        name = self._slots.attach(self._new_name(domain), folder, weights)
        self._heads.put(name, head)
        if tables is not None:
            self._tables[name] = tables
        return name

    def _drop(self, name: str) -> None:
        """Forget everything kept for adapter ``name`` (already detached from the model)."""
        self._heads.states.pop(name, None)
        self._tables.pop(name, None)

    def _register(self, domain: str, folder: Path, lazy: bool) -> None:
        folder = recover_folder(folder)
        self._check_meta(folder)
        self._folders[domain] = folder
        if not lazy:
            self._names[domain] = self._attach(folder, domain)

    def _name_of(self, domain: str) -> str:
        if domain not in self._names:
            self._names[domain] = self._attach(self._folders[domain], domain)
        return self._names[domain]

    # -- routing -----------------------------------------------------------------------------

    @_locked
    def route(self, domain: str | None) -> Route:
        """The adapter that serves ``domain``: its own, else the first fallback step that applies."""
        if domain in self._routes:
            return self._routes[domain]
        if domain is not None and domain in self._folders and domain != GLOBAL:
            route = Route(self._name_of(domain), "domain")
        else:
            route = self._fallback_route(domain)
        self._routes[domain] = route
        return route

    def _fallback_route(self, domain: str | None) -> Route:
        for step in self.fallback.chain:
            if step == "global" and self.has_global:
                return Route(self._name_of(GLOBAL), "global")
            if step == "nearest" and domain is not None and self.domains:
                parts = self._nearest(domain)
                if parts:
                    name = f"mix__{len(self._routes)}_{uuid.uuid4().hex[:6]}"
                    by_name = {self._name_of(d): w for d, w in parts.items()}
                    self._slots.combine(name, by_name)
                    self._heads.blend(name, by_name)
                    heaviest = max(by_name, key=by_name.get)  # blended weights, the main part's tables
                    if heaviest in self._tables:
                        self._tables[name] = self._tables[heaviest]
                    return Route(name, "nearest", tuple(sorted(parts.items())))
            if step == "base":
                return Route(BASE, "base")
        return Route(BASE, "base")

    def _nearest(self, domain: str) -> dict[str, float]:
        for trained in self.domains:
            self._name_of(trained)  # combining needs the adapters on the model
        if not self._slots.can_combine:
            return {}
        return nearest_weights(domain, self.domains, self.fallback, self._embed_names)

    @torch.no_grad()
    def _embed_names(self, texts: list[str]) -> torch.Tensor:
        self._slots.activate(BASE)
        inputs = self.scorer.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        hidden = self.scorer.backbone(**inputs).last_hidden_state
        mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return F.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0), dim=-1)

    def _activate_key(self, key: str) -> None:
        self._slots.activate(key)
        self._heads.activate(key)

    @_locked
    def activate(self, domain: str | None) -> Route:
        """Switch the shared model to ``domain``'s route, for serving one domain with ``bank.scorer``.

        Not for threads: another thread's call may switch the model back before ``bank.scorer``
        is used. From threads, score through :meth:`score` / :meth:`rank`, or hold the model
        with :meth:`serving`.
        """
        self._check_not_empty()
        route = self.route(domain)
        self._activate_key(route.key)
        return route

    @contextlib.contextmanager
    def serving(self, domain: str | None) -> Iterator[Scorer]:
        """``with bank.serving(domain) as scorer:`` the scorer switched to ``domain``, held for the block.

        Other threads' calls wait until the block ends, so the scorer stays on this route.
        """
        with self._lock:
            self.activate(domain)
            yield self.scorer

    def _check_not_empty(self) -> None:
        if not self._folders:
            raise EmptyBankError(
                "the bank has no adapter left: its last domain was removed and it has no global adapter. "
                "Add one with bank.add(domain, adapter_folder), or load a bank that has a global adapter"
            )

    # -- scoring -----------------------------------------------------------------------------

    @_locked
    def score(
        self, user_texts: Sequence[str], item_texts: Sequence[str],
        domains: str | None | Sequence[str | None] = None, batch_size: int = 64, mixed: bool | None = None,
        *, context_ids: Sequence[Sequence[str] | None] | None = None, item_ids: Sequence[str | None] | None = None,
        batched_lora: bool = True,
    ) -> np.ndarray:  # fmt: skip
        """Score aligned (user context, item) pairs, each under its domain's adapter and prior weights.

        Args:
            user_texts: one user context per pair.
            item_texts: one item text per pair.
            domains: one domain for all pairs, one per pair, or ``None`` (fallback chain).
            batch_size: pairs per encoder pass.
            mixed: ``True`` scores pairs of different domains in the same batches (methods with
                ``supports_mixed_batches``); ``False`` groups pairs by domain; ``None`` picks
                mixed where the method supports it and the scorer reads each pair as one input
                (a cross-encoder). A bi-encoder (:attr:`~coldstart_peft.Scorer.embeds_texts_apart`)
                is grouped: by domain it embeds each distinct text once, mixed every pair's texts.
            context_ids: per pair, the ids of the user's context items (for id-keyed priors).
            item_ids: per pair, the item's id (for id-keyed priors).
            batched_lora: in mixed batches of plain LoRA adapters, apply every row's adapter in
                one gathered matmul per layer (:mod:`~coldstart_peft.bank.batched_lora`);
                ``False`` uses peft's per-adapter ``adapter_names`` path.

        Returns:
            One score per pair; the same numbers whichever way the pairs are batched, and for a
            domain the same as its adapter loaded alone (:func:`~coldstart_peft.artifact.load_adapter`).
        """
        if len(user_texts) != len(item_texts):
            raise ValueError(f"{len(user_texts)} user texts but {len(item_texts)} item texts")
        self._check_not_empty()
        per_pair = self._per_pair(domains, len(item_texts))
        routes = {d: self.route(d) for d in dict.fromkeys(per_pair)}
        keys = [routes[d].key for d in per_pair]
        distinct = list(dict.fromkeys(keys))
        if mixed and not self._slots.mixed:
            raise ConfigError(f"method {self.method.name!r} cannot mix adapters in one batch; score with mixed=False")
        if mixed is None:
            mixed = self._slots.mixed and not self.scorer.embeds_texts_apart
        if mixed and len(distinct) > 1:
            batched = self._slots.batched() if batched_lora and hasattr(self._slots, "batched") else None
            out = score_mixed(self.scorer, user_texts, item_texts, keys, self._activate_key,
                              self._heads.activate, batch_size, batched)  # fmt: skip
        else:
            out = np.empty(len(item_texts), dtype=np.float32)
            for key in distinct:
                rows = [i for i, k in enumerate(keys) if k == key]
                self._activate_key(key)
                out[rows] = self.scorer.score_texts([user_texts[i] for i in rows], [item_texts[i] for i in rows], batch_size)
        priors = self.scorer.priors
        for key in distinct:  # each route's own prior weights over its tables; the bare base model has none
            if priors is None or key not in self._tables:
                continue
            rows = [i for i, k in enumerate(keys) if k == key]
            self._heads.activate(key)
            priors.tables = self._tables[key]
            out[rows] += priors.score([user_texts[i] for i in rows], [item_texts[i] for i in rows],
                                      None if context_ids is None else [context_ids[i] for i in rows],
                                      None if item_ids is None else [item_ids[i] for i in rows])  # fmt: skip
        return out

    def pair_scorer(self, domain_of: Mapping[str, str | None], batch_size: int = 128) -> Callable:
        """A pair scorer for :func:`~coldstart_peft.evaluation.ranking.score_cases` that routes each
        pair by its candidate item's domain (``domain_of[item id]``; an unknown item takes the fallback chain).

        This is how a bank ranks a user's candidates: each under the adapter and prior weights of
        its own domain, so nothing depends on which candidate is the user's held-out target.
        """

        def score(user_texts, item_texts, context_ids=None, item_ids=None):
            domains = [domain_of.get(i) for i in item_ids] if item_ids is not None else None
            return self.score(user_texts, item_texts, domains=domains, batch_size=batch_size, context_ids=context_ids,
                              item_ids=item_ids)  # fmt: skip

        return score

    @_locked
    def rank(self, user_text: str, candidates: Sequence[str], domain: str | None | Sequence[str | None] = None,
             batch_size: int = 64, *, context_ids: Sequence[str] | None = None,
             candidate_ids: Sequence[str] | None = None) -> Ranking:  # fmt: skip
        """Rank ``candidates`` for one user; ``domain`` is one domain or one per candidate."""
        per_pair = self._per_pair(domain, len(candidates))
        scores = self.score([user_text] * len(candidates), list(candidates), per_pair, batch_size,
                            context_ids=None if context_ids is None else [context_ids] * len(candidates),
                            item_ids=candidate_ids)  # fmt: skip
        order = sorted(range(len(candidates)), key=lambda i: -scores[i])
        return Ranking(order, scores, [self.route(d) for d in per_pair])

    @staticmethod
    def _per_pair(domains, n: int) -> list[str | None]:
        if domains is None or isinstance(domains, str):
            return [domains] * n
        domains = list(domains)
        if len(domains) != n:
            raise ValueError(f"{len(domains)} domains for {n} pairs; give one domain per pair or one for all")
        return domains

    # -- changing the bank ---------------------------------------------------------------

    def add(self, domain: str, path: str | Path, replace: bool = False, persist: bool = False) -> Route:
        """Attach the adapter folder ``path`` as ``domain``'s, or hot-swap it with ``replace=True``.

        The new adapter is checked completely and loaded next to the old one before anything
        switches, so a bad folder raises and leaves the bank as it was. Other domains are untouched.

        Args:
            domain: the domain's real name.
            path: an adapter folder (``save_adapter`` layout) trained on the bank's base model.
            replace: allow replacing the domain's current adapter.
            persist: also copy the folder into the bank root (atomically) and update the manifest.

        Raises:
            AdapterError: the domain already has an adapter and ``replace`` is false, or the
                adapter does not fit the bank (method, scorer, base model), or it is corrupt.

        Thread-safe: the folder is read and checked without holding the bank, then the swap is
        one step under its lock, so concurrent scores see the old adapter or the new one.
        """
        if not isinstance(domain, str) or not domain.strip():
            raise ConfigError(f"a domain name must be a non-empty string, got {domain!r}")
        path = recover_folder(Path(path))
        if persist and self.root is None:
            raise ConfigError("persist=True needs a bank loaded from a folder (AdapterBank.load)")
        if domain in self and not replace:  # checked again under the lock; this one saves the reading
            raise AdapterError(f"domain {domain!r} already has an adapter; pass replace=True to hot-swap it")
        manifest = self._check_meta(path)
        files = self._read(path)
        with self._lock:
            return self._swap_in(domain, path, manifest, files, replace, persist)

    def _swap_in(self, domain: str, path: Path, manifest: dict, files: tuple, replace: bool, persist: bool) -> Route:
        if domain in self and not replace:
            raise AdapterError(f"domain {domain!r} already has an adapter; pass replace=True to hot-swap it")
        name = self._attach(path, domain, files)
        if persist:
            folder = folder_for(self.manifest, domain)
            try:
                target = self._folder(folder)
                copy_adapter(path, target)
                share_tables(self.root, target)
            except BaseException:
                self._slots.detach(name)
                self._drop(name)
                raise
            path = target
            self._record(domain, folder, manifest)
        old = self._names.get(domain)
        self._folders[domain], self._names[domain] = path, name
        self._forget_routes()
        if old is not None:
            self._slots.detach(old)
            self._drop(old)
        return self.route(domain)

    @_locked
    def remove(self, domain: str, persist: bool = False) -> None:
        """Detach ``domain``'s adapter; it is then served by the fallback chain.

        Args:
            domain: a domain of :attr:`domains`.
            persist: also delete its folder from the bank root and update the manifest.
        """
        if domain not in self:
            raise UnknownNameError("domain", domain, self.domains)
        name = self._names.pop(domain, None)
        folder = self._folders.pop(domain)
        self._forget_routes()
        if name is not None:
            self._slots.detach(name)
            self._drop(name)
        if persist and self.root is not None:
            self.manifest["domains"] = [d for d in self.manifest["domains"] if d["name"] != domain]
            write_manifest(self.root, self.manifest)
            # Only a folder of the bank's own, never one an edited manifest pointed elsewhere.
            if folder.parent.resolve() == self.root.resolve() and not folder.is_symlink():
                shutil.rmtree(folder, ignore_errors=True)

    def _record(self, domain: str, folder: str, adapter_manifest: dict) -> None:
        entries = [e for e in self.manifest["domains"] if e["name"] != domain]
        entries.append({"name": domain, "folder": folder, "status": "trained", "metrics": adapter_manifest.get("metrics", {}),
                        "added": adapter_manifest.get("created")})  # fmt: skip
        self.manifest["domains"] = sorted(entries, key=lambda e: e["name"])
        write_manifest(self.root, self.manifest)
        self._cold.pop(domain, None)

    def _forget_routes(self) -> None:
        """Drop cached routes; combined adapters are rebuilt from the current domains on demand."""
        for route in self._routes.values():
            if route.reason == "nearest":
                self._slots.detach(route.key)
                self._drop(route.key)
        self._routes.clear()

    # -- single-domain fast path ---------------------------------------------------------

    @_locked
    def merged_scorer(self, domain: str | None) -> Scorer:
        """A standalone scorer for one domain with its adapter folded into the base weights.

        Serving one domain this way skips the adapter arithmetic of every forward pass. Only
        for methods with ``supports_merge``; the bank itself is unchanged.
        """
        route = self.route(domain)
        if route.key != BASE and not self.method.supports_merge:
            raise AdapterError(f"method {self.method.name!r} cannot merge its adapters; serve the domain with bank.activate")
        backbone = self._slots.merged_backbone(route.key)
        original = self.scorer.backbone
        self.scorer.backbone = nn.Identity()  # keep the deep copy from cloning every adapter
        try:
            clone = copy.deepcopy(self.scorer)
        finally:
            self.scorer.backbone = original
        clone.backbone = backbone
        clone.load_head_state_dict(self._heads.states[route.key])
        if clone.priors is not None:
            if route.key in self._tables:
                clone.priors.tables = self._tables[route.key]
            else:  # the bare base model's route has no priors
                clone.attach_priors(None)
        clone.eval()
        return clone
