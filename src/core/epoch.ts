/**
 * Epochs and LSNs. An epoch `{dataLossVersion, configurationVersion}` orders by DataLossVersion
 * first, then ConfigurationVersion; a backup version `(epoch, lsn)` orders by epoch, then LSN
 * (Service Fabric's `Epoch` and `BackupVersion`). Both halves are 64-bit, so bigint.
 */

export interface Epoch {
  readonly dataLossVersion: bigint;
  readonly configurationVersion: bigint;
}

export interface StateVersion {
  readonly epoch: Epoch;
  readonly lsn: bigint;
}

export const INITIAL_EPOCH: Epoch = Object.freeze({ dataLossVersion: 1n, configurationVersion: 1n });

function sign(d: bigint): -1 | 0 | 1 {
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

export function compareEpochs(a: Epoch, b: Epoch): -1 | 0 | 1 {
  return sign(a.dataLossVersion - b.dataLossVersion) || sign(a.configurationVersion - b.configurationVersion);
}

export function compareVersions(a: StateVersion, b: StateVersion): -1 | 0 | 1 {
  return compareEpochs(a.epoch, b.epoch) || sign(a.lsn - b.lsn);
}

export function epochsEqual(a: Epoch, b: Epoch): boolean {
  return compareEpochs(a, b) === 0;
}

export function formatEpoch(e: Epoch): string {
  return `${e.dataLossVersion}:${e.configurationVersion}`;
}

export const maxBigint = (a: bigint, b: bigint): bigint => (a > b ? a : b);
