// Totals a cart (a component of the payments team).
import { formatPrice } from "../../shared/format";

export function checkout(items) {
  const total = items.reduce((sum, item) => sum + item.price, 0);
  return `total: ${formatPrice(total)}`;
}
