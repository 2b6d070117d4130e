/**
 * The epoch on the wire: `{DataLossVersion, ConfigurationVersion}`, both 64-bit integers as
 * decimal strings (Service Fabric's `Epoch`), and the names the 6.2-preview API gave them.
 */
import type { Epoch } from '../core/epoch.ts';
import type { EpochWire } from '../core/host-protocol.ts';

/** Declared in core (the host protocol carries epochs too); this is its one home on the wire. */
export type { EpochWire } from '../core/host-protocol.ts';

/** The 6.2-preview BackupRestore API's spelling of an epoch. */
export interface PreviewEpochWire {
  readonly DataLossNumber: string;
  readonly ConfigurationNumber: string;
}

export function epochToWire(e: Epoch): EpochWire {
  return { DataLossVersion: e.dataLossVersion.toString(), ConfigurationVersion: e.configurationVersion.toString() };
}

/** The epoch an `EpochWire` names; throws SyntaxError (BigInt's) when a half is not an integer. */
export function epochFromWire(w: EpochWire): Epoch {
  return { dataLossVersion: BigInt(w.DataLossVersion), configurationVersion: BigInt(w.ConfigurationVersion) };
}

/** The members whose value is an epoch, in answers that carry one. */
const EPOCH_MEMBERS = new Set(['EpochOfLastBackupRecord', 'RestoredEpoch']);

/**
 * An answer with every epoch member renamed as 6.2-preview named them (DataLossNumber,
 * ConfigurationNumber): the official npm client, which still sends 6.2-preview, reads those names.
 */
export function previewEpochNames(body: unknown): unknown {
  if (Array.isArray(body)) return body.map(previewEpochNames);
  if (body === null || typeof body !== 'object') return body;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (EPOCH_MEMBERS.has(k) && v && typeof v === 'object') {
      const e = v as Record<string, unknown>;
      out[k] = { DataLossNumber: e.DataLossVersion, ConfigurationNumber: e.ConfigurationVersion };
    } else {
      out[k] = previewEpochNames(v);
    }
  }
  return out;
}
