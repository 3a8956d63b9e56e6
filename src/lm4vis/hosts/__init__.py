"""Hosts: the models a frozen LM block is attached to, and the one way to attach it.

Every host is registered (`lm4vis.register_host`) with a typed config; `build_model` builds
the host a config names and attaches the variant's block.
"""

from .._lazy import lazy_exports

_EXPORTS = {
    "attach": ".attachment", "detach": ".attachment", "find_attachment": ".attachment",
    "find_attachments": ".attachment", "Attachment": ".attachment", "AttachError": ".attachment",
    "PLACEMENTS": ".attachment", "host_width": ".attachment",
    "LMSlot": ".slot",
    "build_model": ".build", "build_host": ".build",
    "VARIANTS": ".configs", "BlockConfig": ".configs", "HostConfig": ".configs",
    "TimmViTConfig": ".configs", "VectorNetHostConfig": ".configs",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
