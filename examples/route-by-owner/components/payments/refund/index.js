// Refunds part of a checkout; depends on payments/checkout.
import { checkout } from "../checkout";

export function refund(items, amount) {
  return `${checkout(items)}, refunded ${amount}`;
}
