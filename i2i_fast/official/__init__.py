"""Official checkpoints of the published methods, converted into i2i_fast checkpoints.

``i2i-fast import-official METHOD FILE [FILE ...] --config NAME --out OUT.pt`` (or
``import_official``) turns the files an official implementation saves into the checkpoint the
trainer writes, so ``translate``, ``eval`` and ``train --resume`` work on them. One module per
format (``munit``: NVlabs/MUNIT; ``stargan_v2``: clovaai/stargan-v2), on shared matching of
state dicts and optimizer states (``state``) and one importer (``importer``). Files are read with
``torch.load(weights_only=True)``; nothing in them is executed or imported.
"""

from .errors import OfficialFormatError
from .importer import FORMATS, ImportResult, import_official

__all__ = ["FORMATS", "ImportResult", "OfficialFormatError", "import_official"]
