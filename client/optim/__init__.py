"""``s.optim``: ``torch.optim`` for gradd tensors, embedded or on a server.

The same classes serve every session (the optimizer finds its session from its parameters):
``SGD``, ``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad`` and their base ``Optimizer``, and
``lr_scheduler``. On a server session ``step()`` and ``zero_grad()`` are one command each for
all the parameters, and the optimizer's state lives on the server.
"""

from . import lr_scheduler
from .optimizer import Optimizer
from .optimizers import SGD, Adagrad, Adam, AdamW, RMSprop

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
