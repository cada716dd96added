import { badge } from "../badge";

export function card(title) {
  return `<div class="card">${badge(title)}</div>`;
}
