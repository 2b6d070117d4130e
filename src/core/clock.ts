/**
 * The one shape of time in Lifeboat: everything that schedules, expires or stamps takes a Clock,
 * so tests control `now` (a weekly schedule runs in milliseconds). The system clock is made in
 * `src/main` (the core reads no clock).
 */
export interface Clock {
  now(): Date;
}
