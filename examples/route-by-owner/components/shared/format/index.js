// Formats a price in cents (no OWNERS file: routed by the "components/shared" variant).
export function formatPrice(cents) {
  return `$${(cents / 100).toFixed(2)}`;
}
