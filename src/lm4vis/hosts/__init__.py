"""Hosts: the models a frozen LM block is attached to, and the one way to attach it."""

from .attach import PLACEMENTS, AttachError, Attachment, attach, detach, find_attachment, host_width
from .vit import (VARIANTS, BlockConfig, HostConfig, TokenLayout, build_host, build_model,
                  token_layout)

__all__ = ["attach", "detach", "find_attachment", "Attachment", "AttachError", "PLACEMENTS",
           "host_width", "HostConfig", "BlockConfig", "VARIANTS", "build_host", "build_model",
           "token_layout", "TokenLayout"]
