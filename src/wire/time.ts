/** Times on the wire: Service Fabric's `yyyy-MM-ddTHH:mm:ssZ`, and its "no time" value. */

/** .NET's DateTime.MinValue: what a progress answer says before anything happened. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** A time as the BackupRestore answers write it: whole seconds, UTC. */
export function wireTime(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}
