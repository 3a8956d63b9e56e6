"""lm4vis: frozen transformer layers of pretrained language models as visual encoder layers.

Pang et al., "Frozen Transformers in Language Models Are Effective Visual Encoder Layers",
ICLR 2024.
"""

from .block import FrozenLMBlock, MLPControl
from .checkpoint import CheckpointError, load_lm_layers, open_checkpoint, read_lm_config
from .lm import LMConfig, LMStack, random_lm, tiny_config

__version__ = "0.1.0"

__all__ = ["FrozenLMBlock", "MLPControl", "load_lm_layers", "open_checkpoint", "read_lm_config",
           "CheckpointError", "LMConfig", "LMStack", "random_lm", "tiny_config", "__version__"]


def __getattr__(name: str):
    # Hosts pull in timm; import them only when asked for.
    if name == "attach":
        from .hosts import attach
        return attach
    raise AttributeError(f"module 'lm4vis' has no attribute {name!r}")
