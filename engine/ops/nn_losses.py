"""Loss functions and other ``torch.nn.functional`` ops beyond ``nn.py``'s."""

from __future__ import annotations
