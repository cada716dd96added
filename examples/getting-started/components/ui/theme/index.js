// The colours every UI component shares.
export const theme = {
  primary: "#2d6cdf",
  text: "#1d1d1f",
};
