// The old query builder, kept for existing callers.
export function legacyQuery(terms) {
  return terms.join("+");
}
