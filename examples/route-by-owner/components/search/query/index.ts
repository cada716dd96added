// Builds a search query string.
export function query(terms: string[]): string {
  return terms.map((t) => t.trim()).filter(Boolean).join(" AND ");
}
