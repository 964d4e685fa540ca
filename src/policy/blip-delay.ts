/** The first wait after a blip (Redis or the database briefly unreachable), ms. */
export const BLIP_DELAY_FIRST_MS = 1000;
/** The longest wait after a blip, ms: a run that lasts days rides out any number of them at this pace at worst. */
export const BLIP_DELAY_MAX_MS = 30_000;

/**
 * How long a batch waits before its next attempt after its `blipsBefore + 1`-th transient failure: 1 s doubling,
 * capped at `maxMs`. The attempt is rescheduled without spending a BullMQ attempt, so blips never use them up.
 */
export function blipDelayMs(blipsBefore: number, maxMs = BLIP_DELAY_MAX_MS, firstMs = BLIP_DELAY_FIRST_MS): number {
  const n = Math.max(0, Math.floor(blipsBefore));
  return Math.min(maxMs, firstMs * 2 ** Math.min(n, 30));
}
