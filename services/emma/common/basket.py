"""The basket line every service reads from emma.common.v1.BasketItem: one domain type for all."""

from __future__ import annotations

import dataclasses

# Largest amount (absolute) a basket line or purchase may carry: far beyond any retail
# basket, and small enough that sums of many stay finite and exact as thousandths in a
# 64-bit integer (the profile's spend counter).
MAX_AMOUNT = 1e12


@dataclasses.dataclass(frozen=True)
class BasketLine:
    """One line of a basket or purchase; `amount` is the line total in the basket's currency."""

    product_id: str
    category: str
    quantity: float
    amount: float
