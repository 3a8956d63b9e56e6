"""The language-model side: one typed config and one layer implementation for every family."""

from .._lazy import lazy_exports

_EXPORTS = {
    "LMConfig": ".config", "SUPPORTED_FAMILIES": ".config", "tiny_config": ".config",
    "LMStack": ".layers", "LMLayer": ".layers", "LMAttention": ".layers", "LMMLP": ".layers",
    "Norm": ".layers", "random_lm": ".layers",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
