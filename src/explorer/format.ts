/** How the explorer writes times, sizes, epochs and entities. */
import type { BackupConfigurationInfoWire, BackupEntityWire } from '../wire/protection.ts';
import type { EpochWire } from '../wire/epoch.ts';
import { bytesText } from '../core/bytes.ts';

/** A wire time as `2026-12-07 08:30:00 UTC` (the service's times are UTC; so is the page). */
export function timeText(wire: string | null | undefined): string {
  if (!wire) return '—';
  const d = new Date(wire);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() < 2) return '—';
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** BytesTransferred of TotalBytes, when the service reports them (optional fields). */
export function transferText(p: { BytesTransferred?: number; TotalBytes?: number }): string | undefined {
  if (p.BytesTransferred === undefined) return undefined;
  if (p.TotalBytes === undefined || p.TotalBytes <= 0) return `${bytesText(p.BytesTransferred)} transferred`;
  const pct = Math.min(100, Math.floor((p.BytesTransferred / p.TotalBytes) * 100));
  return `${bytesText(p.BytesTransferred)} of ${bytesText(p.TotalBytes)} (${pct} %)`;
}

export const epochText = (e: EpochWire | null | undefined): string => (e ? `${e.DataLossVersion}/${e.ConfigurationVersion}` : '—');

export function entityText(e: BackupEntityWire): string {
  switch (e.EntityKind) {
    case 'Application': return `Application ${e.ApplicationName}`;
    case 'Service': return `Service ${e.ServiceName}`;
    case 'Partition': return `Partition ${e.PartitionId} of ${e.ServiceName}`;
  }
}

/** The policy of an entity and where it comes from, e.g. `nightly (from Service)`. */
export function protectionText(c: BackupConfigurationInfoWire | undefined): string {
  if (!c?.PolicyName) return 'Not protected';
  return c.PolicyInheritedFrom === c.Kind || c.PolicyInheritedFrom === 'Invalid' ? c.PolicyName : `${c.PolicyName} (from ${c.PolicyInheritedFrom})`;
}

export function suspensionText(c: BackupConfigurationInfoWire | undefined): string {
  if (!c?.SuspensionInfo.IsSuspended) return 'No';
  const from = c.SuspensionInfo.SuspensionInheritedFrom;
  return from === c.Kind || from === 'Invalid' ? 'Suspended' : `Suspended (from ${from})`;
}

export const shortId = (id: string): string => id.slice(0, 8);
