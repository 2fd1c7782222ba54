"""Name the base model in peft's own files by a reference that holds on any machine.

peft writes the folder the base model was read from into ``adapter_config.json``
(``base_model_name_or_path``) and into the ``README.md`` model card it saves beside it. That is
an absolute path inside this environment (the bundled copy in site-packages, a hub cache
snapshot), which a copied adapter folder would point at elsewhere. The recorded path is replaced
after saving rather than before: given a hub id, peft's save asks the hub whether the vocabulary
changed, and saving must never reach the network.
"""

from __future__ import annotations

import json
from pathlib import Path

from coldstart_peft.backbone import BUNDLED_HUB_ID, DEFAULT_BACKBONE

PEFT_CONFIG = "adapter_config.json"
MODEL_CARD = "README.md"


def peft_reference(reference: str) -> str:
    """What peft's files name as the base model: the bundled model's hub id, else ``reference``.

    The hub id lets plain peft (``AutoPeftModel.from_pretrained(folder)``) find the bundled base
    model anywhere; ``coldstart.json`` keeps ``"default"``, which this library resolves offline.
    """
    return BUNDLED_HUB_ID if reference == DEFAULT_BACKBONE else reference


def make_peft_files_portable(folder: Path, reference: str) -> None:
    """Replace the base-model path peft recorded in ``folder`` with :func:`peft_reference` of ``reference``.

    A folder without ``adapter_config.json`` (a method that is not peft's) is left alone.

    Args:
        folder: a freshly written adapter folder (this library's temporary one, before it is renamed into place).
        reference: the portable reference of the base model (:func:`~coldstart_peft.backbone.portable_reference`).
    """
    config_path = Path(folder) / PEFT_CONFIG
    if not config_path.is_file():
        return
    config = json.loads(config_path.read_text(encoding="utf-8"))
    recorded = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    portable = peft_reference(reference)
    if not recorded or recorded == portable:
        return
    config["base_model_name_or_path"] = portable
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    card = Path(folder) / MODEL_CARD
    if card.is_file():
        card.write_text(card.read_text(encoding="utf-8").replace(recorded, portable), encoding="utf-8")
