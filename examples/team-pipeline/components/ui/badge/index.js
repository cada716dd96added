export function badge(text) {
  return `<span class="badge">${text}</span>`;
}
