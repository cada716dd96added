// A button that uses the shared theme (a dependency on ui/theme).
import { theme } from "../theme";

export function button(label) {
  return `<button style="color: ${theme.primary}">${label}</button>`;
}
