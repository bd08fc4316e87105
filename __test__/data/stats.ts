/** Whether an observed `rate` over `n` draws is within 4 standard deviations of `p`. */
export function withinBounds(rate: number, p: number, n: number): boolean {
  return Math.abs(rate - p) <= 4 * Math.sqrt((p * (1 - p)) / n);
}
