"""lm4vis: frozen transformer layers of pretrained language models as visual encoder layers.

Pang et al., "Frozen Transformers in Language Models Are Effective Visual Encoder Layers",
ICLR 2024.
"""

from ._lazy import lazy_exports
from .registry import load_plugins, register_dataset, register_host, register_task

__version__ = "0.1.0"

_EXPORTS = {
    "FrozenLMBlock": ".block", "MLPControl": ".block",
    "load_lm_layers": ".checkpoint", "open_checkpoint": ".checkpoint",
    "read_lm_config": ".checkpoint", "CheckpointError": ".checkpoint",
    "LMConfig": ".lm", "LMStack": ".lm", "random_lm": ".lm", "tiny_config": ".lm",
    "attach": ".hosts.attachment", "detach": ".hosts.attachment", "LMSlot": ".hosts.slot",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = [*_EXPORTS, "register_host", "register_task", "register_dataset", "load_plugins",
           "__version__"]
