"""The basket line every service reads from emma.common.v1.BasketItem: one domain type for all."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class BasketLine:
    """One line of a basket or purchase; `amount` is the line total in the basket's currency."""

    product_id: str
    category: str
    quantity: float
    amount: float
