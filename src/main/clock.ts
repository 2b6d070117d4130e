/** The system clock, made here: the core and the use cases take a Clock (src/core/clock.ts) and read none. */
import type { Clock } from '../core/clock.ts';

export const systemClock: Clock = { now: () => new Date() };
